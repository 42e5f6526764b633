import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { MemoryRateLimitStore, RateLimitPlugin } from '../../src/plugins/rate-limit.plugin.js';
import type { PluginSpec } from '../../src/core/registry.js';
import { TcpListener } from '../../src/transports/tcp-listener.js';
import type { Listener, PeerAddress } from '../../src/core/transport.js';
import { openTunnel, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { exchange, get, header, openClient, withClient, type Client, type WireResponse } from '../helpers/keep-alive.js';
import { userFromHeader } from '../helpers/plugins.js';
import { helloOrigin, oneRequest, rateLimitChain } from '../helpers/rate-limit.js';
import { pollUntil } from '../helpers/wire.js';

function assertRateLimited(t: ExecutionContext, response: WireResponse): void {
  t.is(response.status, 429);
  t.true(Number(header(response, 'retry-after')) >= 1, `Retry-After: ${header(response, 'retry-after')}`);
  t.is(header(response, 'connection'), undefined, 'a refusal keeps the connection open');
  t.is(response.body, 'rate limit exceeded\n');
}

test('MemoryRateLimitStore: starts full, refills at the rate, answers the wait, and keeps debt', (t) => {
  const store = new MemoryRateLimitStore();
  try {
    t.is(store.take('a', 1, 2, 2, 0), 0);
    t.is(store.take('a', 1, 2, 2, 0), 0);
    t.is(store.take('a', 1, 2, 2, 0), 500, 'one token comes back after 500 ms at 2/s');
    t.is(store.take('a', 1, 2, 2, 500), 0);
    t.is(store.take('b', 1, 2, 2, 500), 0, 'another key has its own bucket');
    // Debt: the cost is always taken; the answer is the time until the balance is back to zero.
    t.is(store.take('bytes', 300, 100, 100, 0, true), 2000);
    t.is(store.take('bytes', 1, 100, 100, 1000, true), 1010);
    t.is(store.take('bytes', 1, 100, 100, 3000, true), 0);
    // Full buckets are dropped by the sweep (a new one would start full anyway).
    t.is(store.size, 3);
    store.sweep(1000);
    t.is(store.size, 2, 'b refilled by 1000 ms and is gone');
    store.sweep(100_000);
    t.is(store.size, 0);
  } finally {
    store.close();
  }
});

test('requestsPerSecond 2, burst 2: the third request of a burst gets 429 with Retry-After; the connection serves the next request once a token is back', async (t) => {
  const origin = await helloOrigin();
  await withClient(startProxy({ plugins: rateLimitChain({ requestsPerSecond: 2, burst: 2 }) }), [origin], async (client) => {
    const first = await exchange(client, get(origin.port, '/1'));
    const second = await exchange(client, get(origin.port, '/2'));
    t.is(first.status, 200);
    t.is(first.body, 'hello');
    t.is(second.status, 200);
    const third = await exchange(client, get(origin.port, '/3'));
    assertRateLimited(t, third);
    // 2 tokens a second: one is back 500 ms after the burst.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const fourth = await exchange(client, get(origin.port, '/4'));
    t.is(fourth.status, 200, 'the same connection, after the 429');
    t.is(fourth.body, 'hello');
  });
});

test('requestsPerSecond is per client IP by default: 127.0.0.1 and ::1 have separate budgets', async (t) => {
  const listener = await DualLoopbackListener.create();
  if (!listener) {
    t.log('::1 is not available here; the per-ip case needs two loopback addresses');
    t.pass();
    return;
  }
  const origin = await helloOrigin();
  const proxy = await startProxy({ plugins: rateLimitChain({ requestsPerSecond: 1 }), listener });
  try {
    t.is((await oneRequest(proxy.port, origin.port, '127.0.0.1')).status, 200);
    assertRateLimited(t, await oneRequest(proxy.port, origin.port, '127.0.0.1'));
    t.is((await oneRequest(proxy.port, origin.port, '::1')).status, 200, '::1 has a budget of its own');
    assertRateLimited(t, await oneRequest(proxy.port, origin.port, '::1'));
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('scope global: every client shares one budget', async (t) => {
  const listener = await DualLoopbackListener.create();
  const origin = await helloOrigin();
  const proxy = await startProxy({ plugins: rateLimitChain({ scope: 'global', requestsPerSecond: 1 }), ...(listener ? { listener } : {}) });
  try {
    t.is((await oneRequest(proxy.port, origin.port, '127.0.0.1')).status, 200);
    // Another address when ::1 is available, else another connection from the same one.
    assertRateLimited(t, await oneRequest(proxy.port, origin.port, listener ? '::1' : '127.0.0.1'));
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('scope user: the budget follows exchange.user, and falls back to the client IP', async (t) => {
  const origin = await helloOrigin();
  const proxy = await startProxy({
    plugins: [
      'head-parser',
      'connect-handler',
      'http-forward',
      userFromHeader(),
      { name: 'rate-limit', options: { scope: 'user', requestsPerSecond: 1 } },
      'upstream-dialer',
    ],
  });
  const as = async (user?: string) => {
    const client = await openClient(proxy.port);
    try {
      return await exchange(client, get(origin.port, '/', user === undefined ? '' : `X-User: ${user}\r\n`));
    } finally {
      client.socket.destroy();
    }
  };
  try {
    t.is((await as('alice')).status, 200);
    assertRateLimited(t, await as('alice'));
    t.is((await as('bob')).status, 200, 'bob has his own budget from the same IP');
    t.is((await as()).status, 200, 'no user: the IP budget, separate from the users');
    assertRateLimited(t, await as());
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('connectionsPerSecond 1, burst 1: the second connection gets 429 for its first request', async (t) => {
  const origin = await helloOrigin();
  const proxy = await startProxy({ plugins: rateLimitChain({ connectionsPerSecond: 1, burst: 1 }) });
  try {
    const first = await openClient(proxy.port);
    const second = await openClient(proxy.port);
    try {
      const answer = await exchange(second, get(origin.port, '/'));
      t.is(answer.status, 429);
      t.is(header(answer, 'connection'), 'close', 'a connection over the connection rate is refused as a whole');
      t.true(await second.reader.waitEnd());
      // The first connection was within the limit, and keeps serving requests.
      t.is((await exchange(first, get(origin.port, '/a'))).status, 200);
      t.is((await exchange(first, get(origin.port, '/b'))).status, 200);
    } finally {
      first.socket.destroy();
      second.socket.destroy();
    }
  } finally {
    await proxy.close();
    await origin.close();
  }
});

/** A chain around a `rate-limit` instance, so a test can read its connection counts. */
const chainWith = (plugin: RateLimitPlugin, before: PluginSpec[] = []): PluginSpec[] => [
  'head-parser',
  'connect-handler',
  'http-forward',
  ...before,
  plugin,
  'upstream-dialer',
];

function assertTooManyConnections(t: ExecutionContext, response: WireResponse, per: string): void {
  t.is(response.status, 429);
  t.is(header(response, 'retry-after'), '1');
  t.is(header(response, 'connection')?.toLowerCase(), 'close');
  t.is(response.body, `too many open connections: at most 2 ${per}\n`);
}

test('maxConnections 2, scope ip: a third open connection gets 429 and is closed; once one closes, a new one is served', async (t) => {
  const origin = await helloOrigin();
  const plugin = new RateLimitPlugin({ scope: 'ip', maxConnections: 2 });
  const proxy = await startProxy({ plugins: chainWith(plugin) });
  const clients: Client[] = [];
  const open = async () => {
    const client = await openClient(proxy.port);
    clients.push(client);
    return client;
  };
  try {
    const [a, b] = [await open(), await open()];
    t.is((await exchange(a, get(origin.port, '/a1'))).status, 200);
    t.is((await exchange(b, get(origin.port, '/b1'))).status, 200);
    t.is((await exchange(a, get(origin.port, '/a2'))).body, 'hello', 'later requests on a counted connection are not counted again');
    t.deepEqual([...plugin.openConnections], [['ip:127.0.0.1', 2]]);

    const c = await open();
    assertTooManyConnections(t, await exchange(c, get(origin.port, '/c')), 'per client address');
    t.true(await c.reader.waitEnd(), 'the proxy closes the refused connection');
    c.socket.end(); // as a client does on the proxy's FIN; the proxy then closes at once
    t.true(await pollUntil(() => proxy.server.connections === 2), 'the refused connection is gone on the proxy side');
    t.deepEqual([...plugin.openConnections], [['ip:127.0.0.1', 2]], 'a refused connection is not counted');

    a.socket.destroy();
    t.true(await pollUntil(() => plugin.openConnections.get('ip:127.0.0.1') === 1), 'the closed connection gave its count back');
    const d = await open();
    t.is((await exchange(d, get(origin.port, '/d'))).status, 200);
    t.is((await exchange(b, get(origin.port, '/b2'))).status, 200, 'the remaining connection still serves');
  } finally {
    for (const client of clients) client.socket.destroy();
    t.true(await pollUntil(() => proxy.server.connections === 0));
    t.is(plugin.openConnections.size, 0, 'every key is dropped once its connections closed');
    await proxy.close();
    await origin.close();
  }
});

test('maxConnections: connections that close before any request are never counted, so nothing leaks', async (t) => {
  const origin = await helloOrigin();
  const plugin = new RateLimitPlugin({ scope: 'ip', maxConnections: 2 });
  const proxy = await startProxy({ plugins: chainWith(plugin) });
  const clients: Client[] = [];
  try {
    // Closed at once, half-closed, and closed mid-head: none of them reaches a request head.
    for (let i = 0; i < 6; i++) {
      const client = await openClient(proxy.port);
      if (i % 3 === 0) client.socket.destroy();
      else if (i % 3 === 1) client.socket.end();
      else client.socket.end(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: a`);
      clients.push(client);
    }
    t.true(await pollUntil(() => proxy.server.connections === 0), 'every connection closed on the proxy side');
    t.is(plugin.openConnections.size, 0);
    const [a, b, c] = [await openClient(proxy.port), await openClient(proxy.port), await openClient(proxy.port)];
    clients.push(a, b, c);
    t.is((await exchange(a, get(origin.port, '/a'))).status, 200);
    t.is((await exchange(b, get(origin.port, '/b'))).status, 200);
    // And the count was not driven below zero either: the cap still holds at two.
    assertTooManyConnections(t, await exchange(c, get(origin.port, '/c')), 'per client address');
  } finally {
    for (const client of clients) client.socket.destroy();
    await proxy.close();
    await origin.close();
  }
});

test('maxConnections, scope user: connections count per user, known at their first request', async (t) => {
  const origin = await helloOrigin();
  const plugin = new RateLimitPlugin({ scope: 'user', maxConnections: 2 });
  const proxy = await startProxy({ plugins: chainWith(plugin, [userFromHeader()]) });
  const clients: Client[] = [];
  const as = async (user: string) => {
    const client = await openClient(proxy.port);
    clients.push(client);
    return exchange(client, get(origin.port, '/', `X-User: ${user}\r\n`));
  };
  try {
    t.is((await as('alice')).status, 200);
    t.is((await as('alice')).status, 200);
    assertTooManyConnections(t, await as('alice'), 'per user');
    t.is((await as('bob')).status, 200, 'bob has connections of his own from the same address');
    t.deepEqual(
      new Map(plugin.openConnections),
      new Map([
        ['user:alice', 2],
        ['user:bob', 1],
      ]),
    );
  } finally {
    for (const client of clients) client.socket.destroy();
    t.true(await pollUntil(() => proxy.server.connections === 0));
    t.is(plugin.openConnections.size, 0);
    await proxy.close();
    await origin.close();
  }
});

const KiB = 1024;
/** 512 KiB of a pattern that shows any lost, repeated or reordered byte. */
function pattern(size: number): Buffer {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) body.writeUInt32BE(i, i);
  return body;
}

/** Downloads `url` through the proxy with node:http; resolves the body and the ms it took. */
function download(proxyPort: number, url: string): Promise<{ body: Buffer; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port: proxyPort, path: url, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ body: Buffer.concat(chunks), ms: performance.now() - started }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

test('bytesPerSecond 256 KiB, burst 64 KiB: 512 KiB takes at least 1.5 s and arrives intact', async (t) => {
  const body = pattern(512 * KiB);
  const origin = await startHttpOrigin((_request, response) => response.end(body));
  const proxy = await startProxy({ plugins: rateLimitChain({ bytesPerSecond: 256 * KiB, burst: 64 * KiB }) });
  try {
    const { body: received, ms } = await download(proxy.port, `http://127.0.0.1:${origin.port}/big`);
    t.is(received.length, body.length);
    t.true(received.equals(body), 'every byte intact and in order');
    // 64 KiB pass on the full bucket, the last chunk read (at most 64 KiB) goes on at once: the
    // other 384 KiB need 1.5 s of refill at 256 KiB/s (minus timer rounding).
    t.true(ms >= 1450, `took ${ms.toFixed(0)} ms`);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('bytesPerSecond: two parallel downloads of one client share the budget', async (t) => {
  const body = pattern(256 * KiB);
  const origin = await startHttpOrigin((_request, response) => response.end(body));
  const proxy = await startProxy({ plugins: rateLimitChain({ bytesPerSecond: 256 * KiB, burst: 64 * KiB }) });
  try {
    const started = performance.now();
    const results = await Promise.all([download(proxy.port, `http://127.0.0.1:${origin.port}/a`), download(proxy.port, `http://127.0.0.1:${origin.port}/b`)]);
    const ms = performance.now() - started;
    for (const { body: received } of results) t.true(received.equals(body), 'every byte intact and in order');
    // Alone, each would take about 0.5 s (at most 0.75 s of refill). Shared, the 512 KiB minus
    // the full bucket and the last chunk each connection may read while within budget (at most
    // 64 KiB + 2 × 64 KiB) still need 1.25 s at 256 KiB/s.
    t.true(ms >= 1200, `took ${ms.toFixed(0)} ms`);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('bytesPerSecond limits uploads: the client is held while over budget, and every byte arrives', async (t) => {
  const body = pattern(256 * KiB);
  let received: Buffer | undefined;
  const origin = await startHttpOrigin((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received = Buffer.concat(chunks);
      response.end('got it');
    });
  });
  const proxy = await startProxy({ plugins: rateLimitChain({ bytesPerSecond: 128 * KiB, burst: 32 * KiB }) });
  try {
    const started = performance.now();
    const status = await new Promise<number>((resolve, reject) => {
      const request = http.request(
        {
          host: '127.0.0.1',
          port: proxy.port,
          method: 'POST',
          path: `http://127.0.0.1:${origin.port}/up`,
          agent: false,
          headers: { 'Content-Length': body.length },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        },
      );
      request.on('error', reject);
      request.end(body);
    });
    const ms = performance.now() - started;
    t.is(status, 200);
    t.true(received?.equals(body), 'the origin got every byte in order');
    // 256 KiB less the 32 KiB bucket and one last chunk of at most 64 KiB: 160 KiB at 128 KiB/s.
    t.true(ms >= 1200, `took ${ms.toFixed(0)} ms`);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('bytesPerSecond limits CONNECT tunnels both ways; closing mid-way leaves nothing held', async (t) => {
  const origin = await startRawOrigin((socket) => socket.pipe(socket)); // echo
  const proxy = await startProxy({ plugins: rateLimitChain({ bytesPerSecond: 64 * KiB, burst: 16 * KiB }) });
  try {
    const sent = pattern(128 * KiB);
    const { socket, head } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    try {
      t.regex(head, /^HTTP\/1\.1 200 /);
      const started = performance.now();
      const chunks: Buffer[] = [];
      let length = 0;
      const echoed = new Promise<void>((resolve, reject) => {
        socket.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          length += chunk.length;
          if (length >= sent.length) resolve();
        });
        socket.on('close', () => reject(new Error(`closed after ${length} bytes`)));
      });
      socket.write(sent);
      await echoed;
      const ms = performance.now() - started;
      t.true(Buffer.concat(chunks).equals(sent), 'the echo is intact');
      // Upstream-bound: 128 KiB less the 16 KiB bucket and one last read of at most 64 KiB, at 64 KiB/s.
      t.true(ms >= 700, `took ${ms.toFixed(0)} ms`);
      // Over budget again, then gone: the connection closes with its timers and holds.
      socket.write(sent);
    } finally {
      socket.destroy();
    }
    for (let i = 0; i < 100 && proxy.server.connections > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    t.is(proxy.server.connections, 0);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('bad options stop start-up: a limit must be positive, scope one of ip, user, global', async (t) => {
  const zero = await t.throwsAsync(startProxy({ plugins: rateLimitChain({ requestsPerSecond: 0 }) }));
  t.regex(zero?.message ?? '', /options\.requestsPerSecond: expected > 0, found 0/);
  const max = await t.throwsAsync(startProxy({ plugins: rateLimitChain({ maxConnections: 1.5 }) }));
  t.regex(max?.message ?? '', /options\.maxConnections/);
  const scope = await t.throwsAsync(startProxy({ plugins: rateLimitChain({ scope: 'host' }) }));
  t.regex(scope?.message ?? '', /options\.scope: expected one of "ip", "user", "global"/);
  const order = await t.throwsAsync(startProxy({ plugins: ['head-parser', 'upstream-dialer', { name: 'rate-limit', options: {} }] }));
  t.regex(order?.message ?? '', /expected "upstream-dialer" later in the chain/);
});

/** Listens on 127.0.0.1 and ::1 on one port, so a test has two client addresses. */
class DualLoopbackListener implements Listener {
  private constructor(
    private readonly v4: TcpListener,
    private readonly v6: TcpListener,
    private readonly port: number,
  ) {}

  /** Undefined when ::1 cannot be bound (no IPv6 loopback), or the port is taken there. */
  static async create(): Promise<DualLoopbackListener | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const probe = net.createServer();
      probe.listen(0, '127.0.0.1');
      await once(probe, 'listening');
      const { port } = probe.address() as net.AddressInfo;
      await new Promise((resolve) => probe.close(resolve));
      if (await canListen(port, '::1')) return new DualLoopbackListener(new TcpListener('127.0.0.1', port), new TcpListener('::1', port), port);
      if (!(await canListen(0, '::1'))) return undefined;
    }
    return undefined;
  }

  async listen(onConnection: (socket: Duplex, peer: PeerAddress) => void): Promise<{ host: string; port: number }> {
    await this.v4.listen(onConnection);
    await this.v6.listen(onConnection);
    return { host: '127.0.0.1', port: this.port };
  }

  async close(): Promise<void> {
    await this.v4.close();
    await this.v6.close();
  }
}

/** Whether `host:port` can be bound now (the probe is closed again). */
async function canListen(port: number, host: string): Promise<boolean> {
  const server = net.createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => resolve(true));
  });
  if (ok) await new Promise((resolve) => server.close(resolve));
  return ok;
}
