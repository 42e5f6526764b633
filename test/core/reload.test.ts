// A chain is a value: ProxyServer.reload and reloadProxy, in process.
import test from 'ava';
import { container } from 'tsyringe';
import { AdminRouteTable, AdminRoutes } from '../../src/core/admin-routes.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { reloadProxy } from '../../src/proxy.js';
import { openTunnel, readUntil, ROOT, startProxy, startRawOrigin } from '../helpers/net.js';
import { pollUntil } from '../helpers/wire.js';

const WHERE = { baseDir: ROOT, source: 'test' };

/** A plugin instance that notes its connections' closes and its own dispose. */
function marker(tag: string, log: string[]): ProxyPlugin {
  return { name: `marker-${tag}`, onClose: () => log.push(`close ${tag}`), dispose: () => void log.push(`dispose ${tag}`) };
}

test('reload: an open connection keeps its chain; the old chain is disposed after its last connection; close() disposes the rest', async (t) => {
  const origin = await startRawOrigin((socket) => socket.pipe(socket));
  const log: string[] = [];
  const proxy = await startProxy({ plugins: ['head-parser', 'connect-handler', marker('a', log), 'upstream-dialer'] });
  try {
    const first = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    const plugins = await reloadProxy(proxy.server, ['head-parser', 'connect-handler', marker('b', log), 'upstream-dialer'], WHERE);
    t.is(proxy.server.plugins, plugins);
    t.deepEqual(log, [], 'the old chain still has a connection');
    const second = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    second.socket.end();
    t.true(await pollUntil(() => log.includes('close b')));
    t.deepEqual(log, ['close b'], 'the new chain served the new connection; nothing disposed');
    first.socket.write('still here');
    t.is(await readUntil(first.socket, (text) => text === 'still here'), 'still here', 'the old connection still works');
    first.socket.end();
    t.true(await pollUntil(() => log.includes('dispose a')));
    t.deepEqual(log, ['close b', 'close a', 'dispose a']);
    await proxy.server.close(0);
    t.deepEqual(log, ['close b', 'close a', 'dispose a', 'dispose b']);
    const late = marker('c', log);
    t.throws(() => proxy.server.reload([late]), { message: 'the server is closing' });
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('reloadProxy: an invalid chain changes nothing (its admin routes included); a valid one takes over /faults', async (t) => {
  const services = container.createChildContainer();
  services.registerInstance(Logger, new SilentLogger());
  const routes = new AdminRouteTable();
  services.registerInstance(AdminRoutes, routes);
  const proxy = await startProxy({ container: services, plugins: ['head-parser', { name: 'faults', options: { seed: 1 } }] });
  try {
    const running = proxy.server.plugins;
    const handler = routes.find('/faults');
    t.truthy(handler);
    const error = await t.throwsAsync(reloadProxy(proxy.server, ['head-parser', { name: 'faults', options: { seed: 2 } }, { name: 'nope' }], WHERE));
    t.regex(error.message, /^test: plugins\[2\] \("nope"\) name: expected a built-in plugin/);
    t.is(proxy.server.plugins, running);
    t.is(routes.find('/faults'), handler, 'the running chain keeps its route');
    await reloadProxy(proxy.server, ['head-parser', { name: 'faults', options: { seed: 3 } }], WHERE);
    t.not(proxy.server.plugins, running);
    const next = routes.find('/faults');
    t.truthy(next);
    t.not(next, handler, 'the new chain serves /faults');
    // The old chain had no connection: it was disposed at once, and its unregistering left the new route alone.
    await new Promise((resolve) => setImmediate(resolve));
    t.is(routes.find('/faults'), next);
    const answer = await next!({ method: 'GET', path: '/faults', body: '' });
    t.is(answer.status, 200);
  } finally {
    await proxy.close();
  }
});
