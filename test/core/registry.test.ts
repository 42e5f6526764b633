import 'reflect-metadata';
import path from 'node:path';
import test from 'ava';
import { Registry } from 'prom-client';
import { container } from 'tsyringe';
import { ProxyError } from '../../src/core/errors.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { resolvePlugins, type PluginSpec } from '../../src/core/registry.js';
import { createStats, ProxyStats } from '../../src/core/stats.js';
import { BUILT_IN_PLUGINS } from '../../src/plugins/all.js';
import { DEFAULT_CHAIN, HeadParserPlugin } from '../../src/plugins/index.js';
import { MetricsRegistry } from '../../src/plugins/metrics.plugin.js';
import { Dialer } from '../../src/core/transport.js';
import { TcpDialer } from '../../src/transports/tcp-dialer.js';

const services = container.createChildContainer();
services.registerInstance(Logger, new SilentLogger());
services.registerInstance(Dialer, new TcpDialer());
services.registerInstance(MetricsRegistry, new Registry());
services.registerInstance(ProxyStats, createStats());
const baseDir = path.join(process.cwd(), 'test/fixtures/plugins');
const resolve = (specs: PluginSpec[]) => resolvePlugins(specs, { catalog: BUILT_IN_PLUGINS, container: services, baseDir, source: 'plugins.json' });

async function configError(t: import('ava').ExecutionContext, specs: PluginSpec[]): Promise<string> {
  const error = await t.throwsAsync(resolve(specs), { instanceOf: ProxyError });
  t.is(error?.code, 'ERR_PROXY_CONFIG');
  return error?.message ?? '';
}

/** Options without which a built-in plugin refuses to start (proxy-auth needs a user; the hash is of "secret", cost 4). */
const REQUIRED_OPTIONS: Record<string, unknown> = {
  'proxy-auth': { users: { alice: '$2b$04$.uIZEsFK0iOvtsOJ8Y6PWeIbX0.7bFM7RAi2meNNMkf1ktPPERg/i' } },
  // Its default file is relative to the config's folder: not one to leave in the source tree.
  capture: { path: '/dev/null' },
};

/** Plugins a built-in plugin needs earlier in the chain (its manifest's `after`), besides head-parser. */
const REQUIRED_EARLIER: Record<string, string[]> = { metrics: ['byte-counter'] };

test('every built-in plugin resolves through DI with explicit tokens', async (t) => {
  for (const name of BUILT_IN_PLUGINS.keys()) {
    const options = REQUIRED_OPTIONS[name];
    const earlier = ['head-parser', ...(REQUIRED_EARLIER[name] ?? [])];
    const plugins = await resolve([...earlier, options ? { name, options } : name]);
    t.is(plugins[earlier.length]?.name, name);
    await Promise.all(plugins.map((plugin) => Promise.resolve(plugin.dispose?.())));
  }
});

test('the default chain resolves in order, with schema defaults applied', async (t) => {
  const all = await resolve(DEFAULT_CHAIN);
  t.deepEqual(
    all.map((plugin) => plugin.name),
    DEFAULT_CHAIN,
  );
  t.deepEqual((all[0] as unknown as { options: unknown }).options, {
    maxHeaderBytes: 65536,
    headersTimeoutMs: 30000,
    keepAliveTimeoutMs: 5000,
    bodyTimeoutMs: 30000,
    minBodyBytesPerSecond: 240,
    bodyGracePeriodMs: 5000,
  });
});

test('the same plugin twice gets its own options each time', async (t) => {
  const plugins = await resolve([
    { name: 'head-parser', options: { maxHeaderBytes: 2048 } },
    { name: 'head-parser', options: { maxHeaderBytes: 4096 } },
  ]);
  t.is((plugins[0] as unknown as { options: { maxHeaderBytes: number } }).options.maxHeaderBytes, 2048);
  t.is((plugins[1] as unknown as { options: { maxHeaderBytes: number } }).options.maxHeaderBytes, 4096);
});

test('options are copied, never mutated in the caller', async (t) => {
  const options = { maxHeaderBytes: 2048 };
  await resolve([{ name: 'head-parser', options }]);
  t.deepEqual(options, { maxHeaderBytes: 2048 });
});

test('classes, classes with options and instances are accepted in code', async (t) => {
  const instance: ProxyPlugin = { name: 'inline', inbound: () => (source) => source };
  const plugins = await resolve([HeadParserPlugin, { plugin: HeadParserPlugin, options: { headersTimeoutMs: 5 } }, instance]);
  t.deepEqual(
    plugins.map((plugin) => plugin.name),
    ['head-parser', 'head-parser', 'inline'],
  );
  t.is(plugins[2], instance);
});

test('a user module in plain JavaScript loads by path relative to the config', async (t) => {
  const plugins = await resolve(['head-parser', { name: 'marker', module: './marker.plugin.js', options: { mark: 'x' } }]);
  t.is(plugins[1]?.name, 'marker');
  t.deepEqual((plugins[1] as unknown as { options: unknown }).options, { mark: 'x' });
});

test('an unknown plugin name names the entry and the known plugins', async (t) => {
  const message = await configError(t, ['head-parser', 'nope']);
  t.true(message.startsWith('plugins.json: plugins[1] ("nope") name: expected a built-in plugin (head-parser, '), message);
  t.true(message.endsWith('found "nope"'), message);
});

test('bad options name the field, what was expected and what was found', async (t) => {
  t.is(
    await configError(t, [{ name: 'head-parser', options: { maxHeaderBytes: 'big' } }]),
    'plugins.json: plugins[0] ("head-parser") options.maxHeaderBytes: expected integer, found "big"',
  );
  t.is(
    await configError(t, [{ name: 'head-parser', options: { maxHeaderBytes: 10 } }]),
    'plugins.json: plugins[0] ("head-parser") options.maxHeaderBytes: expected >= 1024, found 10',
  );
  t.is(
    await configError(t, [{ name: 'logger', options: { format: 'xml' } }]),
    'plugins.json: plugins[0] ("logger") options.format: expected one of "text", "json", found "xml"',
  );
  t.is(
    await configError(t, [{ name: 'byte-counter', options: { extra: 1 } }]),
    'plugins.json: plugins[0] ("byte-counter") options: expected no option "extra", found it set',
  );
});

test('order constraints are checked: after and before', async (t) => {
  t.is(
    await configError(t, ['connect-handler', 'head-parser']),
    'plugins.json: plugins[0] ("connect-handler"): expected "head-parser" earlier in the chain, found it at plugins[1]',
  );
  t.is(
    await configError(t, ['upstream-dialer']),
    'plugins.json: plugins[0] ("upstream-dialer"): expected "head-parser" earlier in the chain, found it missing',
  );
  t.is(
    await configError(t, ['head-parser', 'upstream-dialer', 'http-forward']),
    'plugins.json: plugins[2] ("http-forward"): expected "upstream-dialer" later in the chain, found it at plugins[1]',
  );
});

test('module failures say which file and why', async (t) => {
  const missing = await configError(t, [{ name: 'x', module: './missing.js' }]);
  t.regex(missing, /plugins\[0\] \("x"\) module: expected a loadable ES module, found .*missing\.js failing/);
  const throwing = await configError(t, [{ name: 'x', module: './throws.plugin.js' }]);
  t.true(throwing.includes('boom at import'), throwing);
  const empty = await configError(t, [{ name: 'x', module: './nothing.plugin.js' }]);
  t.true(empty.endsWith('found no plugin class'), empty);
  const misnamed = await configError(t, ['head-parser', { name: 'other', module: './marker.plugin.js' }]);
  t.true(misnamed.endsWith('found classes named "marker"'), misnamed);
});

test('a class that is not a plugin, or cannot be constructed, is refused', async (t) => {
  class NotAPlugin {}
  const message = await configError(t, [NotAPlugin]);
  t.true(message.includes('expected a plugin class with a static manifest'), message);
  class NeedsSomething {
    static manifest = { name: 'needs' };
    name = 'needs';
    constructor(readonly value: number) {}
  }
  const construct = await configError(t, [NeedsSomething]);
  t.true(construct.includes('cannot construct NeedsSomething'), construct);
});
