// upstream-dialer's upstream timeouts on real loopback sockets: responseTimeoutMs (request sent →
// final response head; 504 in the request's place, the connection goes on), responseIdleTimeoutMs
// (a gap inside a response body; the response is cut and both sides closed) and
// tunnelIdleTimeoutMs (no byte either way through a CONNECT or 101 tunnel; both sides closed).
// Small option values; every wait waits for an event and is bounded; nothing asserts wall time.
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import test from 'ava';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { exchange, get, hasToken, openClient, sleep, startNumberingOrigin, withClient } from '../helpers/keep-alive.js';
import { connectTo, orClose, readUntil, startProxy, startRawOrigin, withTunnel } from '../helpers/net.js';
import { startProxyProcess } from '../helpers/proxy-process.js';
import { collect, parseResponse, pollUntil } from '../helpers/wire.js';

/**
 * A plugin instance that notes the error codes the exchanges ended with (an error answered in a
 * request's place is on the exchange; one that failed the connection comes with the hook) and
 * the connections' closes.
 */
function recorder() {
  const codes: string[] = [];
  const closes: (string | undefined)[] = [];
  const plugin: ProxyPlugin = {
    name: 'recorder',
    onExchangeEnd: (_ctx, ended, error) => {
      const code = error?.code ?? ended?.error?.code;
      if (code) codes.push(code);
    },
    onClose: (_ctx, error) => {
      if (error) codes.push(error.code);
      closes.push(error?.code);
    },
  };
  return { plugin, codes, closes };
}

/** Starts a proxy whose `upstream-dialer` has `options`, with a recorder in the chain. */
async function proxyWith(options: Record<string, number>) {
  const rec = recorder();
  const proxy = await startProxy({ plugins: ['head-parser', rec.plugin, 'connect-handler', 'http-forward', { name: 'upstream-dialer', options }] });
  return { ...rec, proxy };
}

/** Waits (bounded) until the proxy reported the connection's close; returns the distinct error codes reported. */
async function codesAtClose(rec: { codes: string[]; closes: unknown[] }): Promise<string[]> {
  await pollUntil(() => rec.closes.length > 0);
  return rec.closes.length > 0 ? [...new Set(rec.codes)] : ['no close reported'];
}

/**
 * Resolves true once the peer of `socket` closed its side ('end', or 'close' after a reset), false
 * if neither came within `timeoutMs` (a bound, not a measure). Our sockets allow half-open
 * connections, so a peer's close shows as 'end' first.
 */
async function peerClosed(socket: net.Socket, timeoutMs = 3_000): Promise<boolean> {
  if (socket.readableEnded || socket.closed) return true;
  let timer: NodeJS.Timeout | undefined;
  const gone = await Promise.race([
    Promise.race([once(socket, 'end'), once(socket, 'close')]).then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
  ]);
  clearTimeout(timer);
  return gone;
}

/** Resolves true once `socket` closed, false if it is still open after `timeoutMs` (a bound, not a measure). */
async function closesWithin(socket: net.Socket, timeoutMs = 3_000): Promise<boolean> {
  if (socket.closed) return true;
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([
    once(socket, 'close').then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
  ]);
  clearTimeout(timer);
  return closed;
}

/**
 * A raw origin that hands each socket to `onSocket` and keeps them, in order of arrival. Like a
 * usual server it ends its side when the proxy ends its own, so a proxy that lets go of an
 * upstream shows as 'close' here.
 */
async function keepingOrigin(onSocket: (socket: net.Socket) => void = () => {}) {
  const sockets: net.Socket[] = [];
  const origin = await startRawOrigin((socket) => {
    sockets.push(socket);
    socket.on('end', () => socket.end());
    onSocket(socket);
  });
  return { ...origin, sockets };
}

/** A raw origin that reads every request and never answers. */
const silentOrigin = () => keepingOrigin((socket) => socket.resume());

/** The first connection an origin accepted (bounded wait). */
async function firstSocket(origin: { sockets: net.Socket[] }): Promise<net.Socket> {
  await pollUntil(() => origin.sockets.length > 0);
  const socket = origin.sockets[0];
  if (!socket) throw new Error('the origin got no connection');
  return socket;
}

test('no response head within responseTimeoutMs: 504 in its place (ERR_PROXY_RESPONSE_TIMEOUT), the upstream closed, the connection goes on', async (t) => {
  const silent = await silentOrigin();
  const good = await startNumberingOrigin();
  const { proxy, ...rec } = await proxyWith({ responseTimeoutMs: 200 });
  await withClient(proxy, [silent, good], async (client) => {
    client.socket.write(get(silent.port, '/hang'));
    const upstream = await firstSocket(silent);
    const upstreamClosed = closesWithin(upstream);
    const answer = await client.reader.next();
    t.is(answer.statusLine, 'HTTP/1.1 504 Gateway Timeout');
    t.regex(answer.body, /^[^\r\n]+\n$/, 'a one-line body');
    t.regex(answer.body, /200 ms/);
    t.false(hasToken(answer, 'connection', 'close'), `headers: ${JSON.stringify(answer.headers)}`);
    t.true(await upstreamClosed, 'the proxy closed the origin connection it gave up on');
    const second = await exchange(client, get(good.port, '/two'));
    t.is(second.status, 200);
    t.is(second.body, 'o:1:/two');
    t.false(client.reader.isEnded, 'the client connection is still open');
    t.deepEqual(rec.codes, ['ERR_PROXY_RESPONSE_TIMEOUT']);
    client.socket.end();
    t.deepEqual(await codesAtClose(rec), ['ERR_PROXY_RESPONSE_TIMEOUT'], 'nothing else at close');
  });
});

test('the next kept-alive request after a slow body still gets its 504 after responseTimeoutMs, not after the body limit', async (t) => {
  // A body that takes a few ticks: the connection's one timer runs through the body phase, whose
  // own limit (60 s) is far longer than the next request's wait.
  const slowBody = await keepingOrigin((socket) => {
    socket.resume();
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab');
      setTimeout(() => socket.destroyed || socket.write('cd'), 150);
    });
  });
  const silent = await silentOrigin();
  const { proxy, ...rec } = await proxyWith({ responseTimeoutMs: 200, responseIdleTimeoutMs: 60_000 });
  await withClient(proxy, [slowBody, silent], async (client) => {
    const first = await exchange(client, get(slowBody.port, '/slow'));
    t.is(first.body, 'abcd');
    const second = await exchange(client, get(silent.port, '/hang'));
    t.is(second.statusLine, 'HTTP/1.1 504 Gateway Timeout');
    t.deepEqual(rec.codes, ['ERR_PROXY_RESPONSE_TIMEOUT']);
  });
});

test('a response body that stalls for responseIdleTimeoutMs is cut: the client gets what came, then the close (ERR_PROXY_RESPONSE_IDLE); the upstream is closed', async (t) => {
  const partial = 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial-body';
  const stalling = await keepingOrigin((socket) => {
    socket.once('data', () => socket.write(partial));
    socket.resume();
  });
  const good = await startNumberingOrigin();
  const { proxy, ...rec } = await proxyWith({ responseIdleTimeoutMs: 200 });
  const socket = await connectTo(proxy.port);
  try {
    const all = collect(socket);
    socket.write(get(stalling.port, '/stall'));
    const upstream = await firstSocket(stalling);
    const upstreamClosed = closesWithin(upstream);
    // A second request pipelined behind it: it must get no answer on the cut connection.
    socket.write(get(good.port, '/after'));
    const { text } = await all;
    const response = parseResponse(text);
    t.is(response.statusLine, 'HTTP/1.1 200 OK');
    t.true(response.headers.includes('Content-Length: 100'), `headers: ${JSON.stringify(response.headers)}`);
    t.is(response.body, 'partial-body', 'the part that came, nothing appended (no error answer, no second response)');
    t.true(await upstreamClosed, 'the proxy closed the stalled origin connection');
    t.deepEqual(await codesAtClose(rec), ['ERR_PROXY_RESPONSE_IDLE']);
  } finally {
    socket.destroy();
    await proxy.close();
    await stalling.close();
    await good.close();
  }
});

test('a response that trickles with gaps below responseIdleTimeoutMs completes, however long it takes', async (t) => {
  const BODY = 'trickle!!!';
  const trickling = await keepingOrigin((socket) => {
    socket.resume();
    const trickle = async () => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\n\r\n`);
      for (const byte of BODY) {
        await sleep(50);
        if (socket.destroyed) return;
        socket.write(byte);
      }
    };
    socket.once('data', () => {
      trickle().catch(() => socket.destroy());
    });
  });
  // The whole body takes longer than both limits; only its gaps count, and only after the head.
  const { proxy, ...rec } = await proxyWith({ responseTimeoutMs: 250, responseIdleTimeoutMs: 250 });
  await withClient(proxy, [trickling], async (client) => {
    const answer = await exchange(client, get(trickling.port, '/slow'));
    t.is(answer.status, 200);
    t.is(answer.body, BODY);
    t.false(client.reader.isEnded, 'the client connection is still open');
    client.socket.end();
    t.deepEqual(await codesAtClose(rec), []);
  });
});

test('time the proxy itself holds the upstream paused (a rate limit) is not the upstream being idle: the response completes', async (t) => {
  const CHUNK = 'r'.repeat(16 * 1024);
  const origin = await keepingOrigin((socket) => {
    socket.resume();
    const respond = async () => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${CHUNK.length * 3}\r\n\r\n`);
      for (let i = 0; i < 3 && !socket.destroyed; i++) {
        socket.write(CHUNK);
        await sleep(20);
      }
    };
    socket.once('data', () => {
      respond().catch(() => socket.destroy());
    });
  });
  // 64 KB/s with a 1 KB bucket: each 16 KiB read puts the budget ~250 ms in debt, and the
  // limiter holds the upstream for that long, longer than responseIdleTimeoutMs.
  const rec = recorder();
  const proxy = await startProxy({
    plugins: [
      'head-parser',
      rec.plugin,
      'connect-handler',
      'http-forward',
      { name: 'rate-limit', options: { bytesPerSecond: 64_000, burst: 1000 } },
      { name: 'upstream-dialer', options: { responseIdleTimeoutMs: 150 } },
    ],
  });
  const client = await openClient(proxy.port);
  try {
    const answer = await exchange(client, get(origin.port, '/limited'));
    t.is(answer.status, 200);
    t.is(answer.body.length, CHUNK.length * 3, 'the whole body, not cut');
    client.socket.end();
    t.deepEqual(await codesAtClose(rec), []);
  } finally {
    client.socket.destroy();
    await proxy.close();
    await origin.close();
  }
});

test('an idle CONNECT tunnel is closed on both sides after tunnelIdleTimeoutMs (ERR_PROXY_TUNNEL_IDLE)', async (t) => {
  const origin = await keepingOrigin(); // accepts and stays silent
  const { proxy, ...rec } = await proxyWith({ tunnelIdleTimeoutMs: 200 });
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket, head }) => {
    t.regex(head, /^HTTP\/1\.1 200 /);
    const upstream = await firstSocket(origin);
    const [clientClosed, upstreamClosed] = await Promise.all([peerClosed(socket), closesWithin(upstream)]);
    t.true(clientClosed, 'the proxy closed the client connection');
    t.true(upstreamClosed, 'the origin connection closed');
    t.deepEqual(await codesAtClose(rec), ['ERR_PROXY_TUNNEL_IDLE']);
  });
});

/** Ten round trips ~50 ms apart through a tunnel whose tunnelIdleTimeoutMs is 200: longer in all than the limit. */
const ROUNDS = 10;

test('a CONNECT tunnel with traffic both ways every ~50 ms is not closed while it flows', async (t) => {
  const origin = await keepingOrigin((socket) => socket.pipe(socket));
  const { proxy, ...rec } = await proxyWith({ tunnelIdleTimeoutMs: 200 });
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket }) => {
    for (let i = 0; i < ROUNDS; i++) {
      await sleep(50);
      const echoed = readUntil(socket, (text) => text.includes(`<${i}>`), 3_000);
      socket.write(`<${i}>`);
      t.is(await echoed, `<${i}>`);
    }
    t.false(socket.closed, 'still open');
    t.deepEqual(rec.codes, []);
  });
});

test('a CONNECT tunnel with traffic one way only (client to origin, then origin to client) is not closed while it flows', async (t) => {
  const origin = await keepingOrigin((socket) => socket.resume()); // reads, never writes on its own
  const { proxy, ...rec } = await proxyWith({ tunnelIdleTimeoutMs: 200 });
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket }) => {
    const upstream = await firstSocket(origin);
    let toOrigin = '';
    upstream.on('data', (chunk: Buffer) => (toOrigin += chunk.toString('latin1')));
    for (let i = 0; i < ROUNDS; i++) {
      await sleep(50);
      socket.write(`>${i}`);
      t.true(await pollUntil(() => toOrigin.includes(`>${i}`), 120), `client byte ${i} reached the origin`);
    }
    for (let i = 0; i < ROUNDS; i++) {
      await sleep(50);
      const got = readUntil(socket, (text) => text.includes(`<${i}`), 3_000);
      upstream.write(`<${i}`);
      t.is(await got, `<${i}`);
    }
    t.false(socket.closed, 'still open');
    t.false(upstream.closed, 'the origin side too');
    t.deepEqual(rec.codes, []);
  });
});

test('tunnelIdleTimeoutMs 0: an idle tunnel stays open (even with small response limits) until its client closes it', async (t) => {
  const origin = await keepingOrigin((socket) => socket.pipe(socket));
  const { proxy, ...rec } = await proxyWith({ tunnelIdleTimeoutMs: 0, responseTimeoutMs: 100, responseIdleTimeoutMs: 100 });
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket }) => {
    await sleep(300); // three times the other limits: nothing applies to a tunnel but its own
    t.false(socket.closed, 'still open after an idle while');
    const echoed = readUntil(socket, (text) => text.includes('alive'), 3_000);
    socket.write('alive');
    t.is(await echoed, 'alive', 'and it still carries bytes');
    socket.end();
    t.true(await closesWithin(socket), 'closed once we ended it');
    t.deepEqual(await codesAtClose(rec), []);
  });
});

/** An origin that answers the first request head with 101 and then stays silent. */
const switchingOrigin = () =>
  keepingOrigin((socket) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      if (!buffer.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.resume();
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    };
    socket.on('data', onData);
  });

/**
 * The body limit long: a 101 tunnel mistaken for a response body would outlast the waits below.
 * Both response limits off: the tunnel's limit must still be watched once the request becomes one.
 */
const UPGRADE_CASES: Record<string, number>[] = [
  { tunnelIdleTimeoutMs: 200, responseIdleTimeoutMs: 60_000 },
  { tunnelIdleTimeoutMs: 200, responseTimeoutMs: 0, responseIdleTimeoutMs: 0 },
];

for (const options of UPGRADE_CASES) {
  test(`an idle 101 Upgrade tunnel is closed on both sides after tunnelIdleTimeoutMs (ERR_PROXY_TUNNEL_IDLE), not by the response limits ${JSON.stringify(options)}`, async (t) => {
    const origin = await switchingOrigin();
    const { proxy, ...rec } = await proxyWith(options);
    await withClient(proxy, [origin], async (client) => {
      client.socket.write(
        `GET http://127.0.0.1:${origin.port}/ws HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      const switching = await client.reader.next();
      t.is(switching.status, 101);
      const upstream = await firstSocket(origin);
      const [clientClosed, upstreamClosed] = await Promise.all([peerClosed(client.socket), closesWithin(upstream)]);
      t.true(clientClosed, 'the proxy closed the client connection');
      t.true(upstreamClosed, 'the origin connection closed');
      t.is(client.reader.pending, '', 'no byte after the 101');
      t.deepEqual(await codesAtClose(rec), ['ERR_PROXY_TUNNEL_IDLE']);
    });
  });
}

/** Descriptors the process `pid` has open now. */
function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Clients that give up on a stalled response; each would hold two descriptors in the proxy. */
const GIVING_UP = 20;

test('clients that close while their response is stalled: the CLI releases both of their descriptors once responseTimeoutMs passes', async (t) => {
  const silent = await silentOrigin();
  const child = await orClose(
    startProxyProcess([
      { name: 'head-parser' },
      { name: 'connect-handler' },
      { name: 'http-forward' },
      { name: 'upstream-dialer', options: { responseTimeoutMs: 300, maxIdlePerOrigin: 0 } },
    ]),
    silent,
  );
  const clients: net.Socket[] = [];
  try {
    const { pid, port } = child;
    const base = fdCount(pid);
    let peak = base;
    for (let i = 0; i < GIVING_UP; i++) clients.push(await connectTo(port, get(silent.port, `/stall/${i}`)));
    // Every request reached the origin: the proxy holds a client and an upstream socket for each.
    t.true(await pollUntil(() => silent.sockets.length >= GIVING_UP, 200), `the origin got ${silent.sockets.length} connections`);
    t.true(
      await pollUntil(() => (peak = Math.max(peak, fdCount(pid))) >= base + 2 * GIVING_UP, 100, 50),
      `the proxy holds ${fdCount(pid)} descriptors, ${base} before the clients came`,
    );
    for (const socket of clients) {
      socket.end();
      socket.destroy();
    }
    const released = await pollUntil(() => fdCount(pid) <= base + 3, 100, 50);
    t.log(`descriptors: ${base} before, peak ${peak}, ${fdCount(pid)} after the clients left`);
    t.true(released, `still ${fdCount(pid)} descriptors open, ${base} before the clients came`);
    t.true(await pollUntil(() => silent.sockets.every((socket) => socket.closed), 100, 50), 'every origin connection was closed');
    t.is(child.child.exitCode, null, 'the proxy is still running');
  } finally {
    for (const socket of clients) socket.destroy();
    await child.close();
    await silent.close();
  }
});

test('responseTimeoutMs 0: no limit on the wait for the response head (an origin answering after 400 ms gets through)', async (t) => {
  const slow = await startNumberingOrigin('slow', 400);
  try {
    // With a body limit set the watchdog still ticks while the head is awaited; without one it does not.
    for (const options of [
      { responseTimeoutMs: 0, responseIdleTimeoutMs: 100 },
      { responseTimeoutMs: 0, responseIdleTimeoutMs: 0 },
    ]) {
      const { proxy, ...rec } = await proxyWith(options);
      await withClient(proxy, [], async (client) => {
        const answer = await exchange(client, get(slow.port, '/late'));
        t.is(answer.status, 200, JSON.stringify(options));
        t.regex(answer.body, /^slow:\d+:\/late$/);
        t.deepEqual(rec.codes, [], JSON.stringify(options));
      });
    }
  } finally {
    await slow.close();
  }
});
