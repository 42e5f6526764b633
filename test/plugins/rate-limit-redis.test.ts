// rate-limit with its buckets and counts in a real redis-server, over real sockets: proxies (one of
// them a separate CLI process) enforcing one limit together; Redis stopped, unreachable and back.
import { execFile } from 'node:child_process';
import http from 'node:http';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { container } from 'tsyringe';
import { createAdminServer } from '../../src/admin.js';
import { Logger } from '../../src/core/logger.js';
import type { PluginSpec } from '../../src/core/registry.js';
import { createStats, ProxyStats } from '../../src/core/stats.js';
import { MetricsRegistry } from '../../src/plugins/metrics-registry.js';
import { RateLimitPlugin } from '../../src/plugins/rate-limit.plugin.js';
import { RecordingLogger } from '../helpers/access-log.js';
import { startBlackHole } from '../helpers/blackhole.js';
import { exchange, get, header, openClient, type Client, type WireResponse } from '../helpers/keep-alive.js';
import { orClose, startHttpOrigin, startProxy } from '../helpers/net.js';
import { startProxyProcess } from '../helpers/proxy-process.js';
import { helloOrigin, oneRequest, rateLimitChain } from '../helpers/rate-limit.js';
import { hasRedis, NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js';

const run = promisify(execFile);

let redis: RedisServer | undefined;
let prefixes = 0;

test.before(async () => {
  if (hasRedis) redis = await startRedis();
});
test.after.always(async () => {
  await redis?.close();
});

/** A test that needs redis-server: skipped, saying so in its title, when it is not installed. */
const redisTest = (title: string, body: (t: ExecutionContext) => Promise<void>) =>
  hasRedis ? test(title, body) : test.skip(`${title} — skipped: ${NO_REDIS}`, body);

/** `store` option for the test server, with keys of their own unless `prefix` is shared on purpose. */
const redisStore = (options: Record<string, unknown> = {}) => ({ redis: { url: redis?.url ?? '', prefix: `p${++prefixes}:`, ...options } });

function assertRateLimited(t: ExecutionContext, response: WireResponse): void {
  t.is(response.status, 429);
  t.true(Number(header(response, 'retry-after')) >= 1, `Retry-After: ${header(response, 'retry-after')}`);
  t.is(response.body, 'rate limit exceeded\n');
}

/** Asks `check` until it answers true, at most 100 times 50 ms apart; answers whether it did. */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

redisTest('Redis store: a proxy and a separate proxy process share one requestsPerSecond budget', async (t) => {
  const origin = await helloOrigin();
  const options = { scope: 'global', requestsPerSecond: 0.1, burst: 2, store: redisStore({ timeoutMs: 500 }) };
  const here = await startProxy({ plugins: rateLimitChain(options) });
  const there = await orClose(startProxyProcess(rateLimitChain(options).map((entry) => (typeof entry === 'string' ? { name: entry } : entry))), here, origin);
  try {
    t.is((await oneRequest(here.port, origin.port)).status, 200);
    t.is((await oneRequest(there.port, origin.port)).status, 200, 'the other process takes the second token');
    assertRateLimited(t, await oneRequest(here.port, origin.port));
    assertRateLimited(t, await oneRequest(there.port, origin.port));
    t.is(origin.connections, 2, 'refused requests never reached the origin');
  } finally {
    await there.close();
    await here.close();
    await origin.close();
  }
});

redisTest('Redis store: maxConnections counts the connections of both proxies; one closed frees its place for the other', async (t) => {
  const origin = await helloOrigin();
  const store = redisStore({ timeoutMs: 500 });
  const a = new RateLimitPlugin({ scope: 'ip', maxConnections: 2, store });
  const b = new RateLimitPlugin({ scope: 'ip', maxConnections: 2, store });
  const routing = (plugin: RateLimitPlugin): PluginSpec[] => ['head-parser', 'connect-handler', 'http-forward', plugin, 'upstream-dialer'];
  const proxyA = await startProxy({ plugins: routing(a) });
  const proxyB = await startProxy({ plugins: routing(b) });
  const clients: Client[] = [];
  const open = async (port: number) => {
    const client = await openClient(port);
    clients.push(client);
    return client;
  };
  try {
    const first = await open(proxyA.port);
    const second = await open(proxyB.port);
    t.is((await exchange(first, get(origin.port, '/1'))).status, 200);
    t.is((await exchange(second, get(origin.port, '/2'))).status, 200);
    const third = await exchange(await open(proxyA.port), get(origin.port, '/3'));
    t.is(third.status, 429);
    t.is(third.body, 'too many open connections: at most 2 per client address\n');
    t.is(header(third, 'retry-after'), '1');
    t.deepEqual([...a.openConnections], [['ip:127.0.0.1', 1]], "this process's own count");
    second.socket.destroy();
    // B gives its count back on its own Redis connection: A's next try lands after it.
    const served = await eventually(async () => (await oneRequest(proxyA.port, origin.port)).status === 200);
    t.true(served, "the place B's closed connection held is free for A");
    t.is((await exchange(first, get(origin.port, '/4'))).status, 200, 'a counted connection goes on serving');
  } finally {
    for (const client of clients) client.socket.destroy();
    await proxyA.close();
    await proxyB.close();
    await origin.close();
  }
});

const KiB = 1024;

/** Downloads `url` through the proxy; resolves the body. */
function download(proxyPort: number, url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port: proxyPort, path: url, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve(Buffer.concat(chunks)));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

redisTest('Redis store: bytesPerSecond is one budget for two proxies; every byte arrives intact', async (t) => {
  const body = Buffer.alloc(256 * KiB);
  for (let i = 0; i < body.length; i += 4) body.writeUInt32BE(i, i);
  const origin = await startHttpOrigin((_request, response) => response.end(body));
  const options = { scope: 'global', bytesPerSecond: 256 * KiB, burst: 64 * KiB, store: redisStore({ timeoutMs: 500 }) };
  const a = await startProxy({ plugins: rateLimitChain(options) });
  const b = await startProxy({ plugins: rateLimitChain(options) });
  try {
    const started = performance.now();
    const [viaA, viaB] = await Promise.all([download(a.port, `http://127.0.0.1:${origin.port}/a`), download(b.port, `http://127.0.0.1:${origin.port}/b`)]);
    const ms = performance.now() - started;
    t.true(viaA.equals(body) && viaB.equals(body), 'both bodies intact and in order');
    // Apart, each proxy's 256 KiB would take under 0.75 s. Shared, 512 KiB less the bucket, one
    // last read per connection and one lease per proxy (64 + 2 × 64 + 2 × 25.6 KiB) need 1 s.
    t.true(ms >= 950, `took ${ms.toFixed(0)} ms`);
  } finally {
    await a.close();
    await b.close();
    await origin.close();
  }
});

redisTest(
  'Redis store down: allow, deny and local answer; back on the same port, the shared budget holds again; failures are counted in /metrics and warned once',
  async (t) => {
    const own = await startRedis();
    const origin = await helloOrigin();
    const registry = new Registry();
    const stats = createStats();
    const logger = new RecordingLogger();
    const services = container.createChildContainer();
    services.registerInstance(Logger, logger);
    services.registerInstance(ProxyStats, stats);
    services.registerInstance(MetricsRegistry, registry);
    const withStore = (onError: string): PluginSpec[] =>
      rateLimitChain({ scope: 'global', requestsPerSecond: 0.1, burst: 1, store: { redis: { url: own.url, prefix: 'down:', onError, timeoutMs: 200 } } });
    const admin = createAdminServer(registry, { host: '127.0.0.1', port: 0 });
    const proxies: Awaited<ReturnType<typeof startProxy>>[] = [];
    try {
      const allow = await startProxy({ container: services, plugins: [...withStore('allow'), 'byte-counter', 'metrics'] });
      proxies.push(allow);
      const deny = await startProxy({ plugins: withStore('deny') });
      proxies.push(deny);
      const local = await startProxy({ plugins: withStore('local') });
      proxies.push(local);
      const { port: adminPort } = await admin.listen();
      t.is((await oneRequest(allow.port, origin.port)).status, 200, 'the one token, through Redis');
      assertRateLimited(t, await oneRequest(deny.port, origin.port));
      await own.stop();
      t.is((await oneRequest(allow.port, origin.port)).status, 200, '"allow": let through');
      t.is((await oneRequest(allow.port, origin.port)).status, 200);
      const denied = await oneRequest(deny.port, origin.port);
      assertRateLimited(t, denied);
      t.is(header(denied, 'retry-after'), '1');
      t.is((await oneRequest(local.port, origin.port)).status, 200, '"local": this process has a bucket of its own');
      assertRateLimited(t, await oneRequest(local.port, origin.port));
      t.is(stats.rateLimitStoreErrors, 2);
      t.is(logger.warnings.filter((line) => line.includes('Redis store call failed')).length, 1, 'one warning for both');
      const metrics = await new Promise<string>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: adminPort, path: '/metrics', agent: false }, (response) => {
            let text = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (text += chunk));
            response.on('end', () => resolve(text));
            response.on('error', reject);
          })
          .on('error', reject);
      });
      t.regex(metrics, /^proxyline_rate_limit_store_errors_total 2$/m);

      await own.start();
      // ioredis reconnects on its own; the fresh Redis has a full bucket: one request, then 429s.
      const enforced = await eventually(async () => (await oneRequest(allow.port, origin.port)).status === 429);
      t.true(enforced, '"allow" uses Redis again');
      assertRateLimited(t, await oneRequest(deny.port, origin.port));
      assertRateLimited(t, await oneRequest(local.port, origin.port));
    } finally {
      await admin.close();
      for (const proxy of proxies) await proxy.close();
      await origin.close();
      await own.close();
    }
  },
);

test('Redis store unreachable (connects hang): requests are answered by onError, none waits on Redis', async (t) => {
  const hole = await startBlackHole();
  const origin = await helloOrigin();
  const store = (onError: string) => ({ redis: { url: `redis://127.0.0.1:${hole.port}`, onError, timeoutMs: 100 } });
  const allow = await startProxy({ plugins: rateLimitChain({ requestsPerSecond: 0.1, burst: 1, store: store('allow') }) });
  const deny = await startProxy({ plugins: rateLimitChain({ requestsPerSecond: 0.1, burst: 1, store: store('deny') }) });
  try {
    for (let i = 0; i < 3; i++) t.is((await oneRequest(allow.port, origin.port)).status, 200);
    assertRateLimited(t, await oneRequest(deny.port, origin.port));
  } finally {
    await allow.close();
    await deny.close();
    await origin.close();
    await hole.close();
  }
});

test('bad store options stop start-up: a redis:// url, a known onError', async (t) => {
  const url = await t.throwsAsync(startProxy({ plugins: rateLimitChain({ store: { redis: { url: 'http://127.0.0.1:6379' } } }) }));
  t.regex(url?.message ?? '', /options\.store/);
  const onError = await t.throwsAsync(startProxy({ plugins: rateLimitChain({ store: { redis: { url: 'redis://127.0.0.1:6379', onError: 'retry' } } }) }));
  t.regex(onError?.message ?? '', /options\.store/);
  const name = await t.throwsAsync(startProxy({ plugins: rateLimitChain({ store: 'redis' }) }));
  t.regex(name?.message ?? '', /options\.store/);
});

test('ioredis is loaded only when a Redis store is configured', async (t) => {
  const loaded = async (store: unknown) => {
    const script = `
      import 'reflect-metadata';
      import { createRequire } from 'node:module';
      const { createProxy } = await import('./dist/src/proxy.js');
      const proxy = await createProxy({ plugins: ${JSON.stringify(rateLimitChain({ requestsPerSecond: 1, store }))}, port: 0 });
      // Closing waits for the store's start-up, the import included.
      await proxy.close(0);
      const cache = Object.keys(createRequire(import.meta.url).cache);
      console.log(cache.some((file) => file.includes('/node_modules/ioredis/')));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    return stdout.trim().split('\n').at(-1);
  };
  t.is(await loaded('memory'), 'false');
  // A closed port: the store gives up on it at close, and ioredis was loaded all the same.
  t.is(await loaded({ redis: { url: 'redis://127.0.0.1:1' } }), 'true');
});
