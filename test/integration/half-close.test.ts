import type net from 'node:net';
import test from 'ava';
import { readUntil, startProxy, startRawOrigin, withTunnel } from '../helpers/net.js';
import { closed, collect, pollUntil } from '../helpers/wire.js';

/** A raw origin that hands its socket to the test. */
async function originWithSocket() {
  let resolveSocket!: (socket: net.Socket) => void;
  const socket = new Promise<net.Socket>((resolve) => (resolveSocket = resolve));
  const origin = await startRawOrigin((s) => resolveSocket(s));
  return { origin, socket };
}

/** Resolves when the socket emits 'end'; rejects on close without end (bounded by `timeoutMs`). */
function ended(socket: net.Socket, timeoutMs = 10_000): Promise<void> {
  if (socket.readableEnded) return Promise.resolve();
  socket.resume(); // 'end' comes only once the data before it was consumed
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no end in time')), timeoutMs);
    socket.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (socket.readableEnded) resolve();
      else reject(new Error('closed without end'));
    });
  });
}

test('client FIN reaches the origin as end, and the origin can still answer', async (t) => {
  const { origin, socket: originSocket } = await originWithSocket();
  await withTunnel(startProxy(), `127.0.0.1:${origin.port}`, [origin], async ({ socket: client }) => {
    const upstream = await originSocket;
    const received = readUntil(upstream, (text) => text === 'last words');
    client.end('last words');
    t.is(await received, 'last words');
    await ended(upstream);
    t.false(client.destroyed);
    // The other direction is still open.
    const reply = readUntil(client, (text) => text === 'reply after your FIN');
    upstream.write('reply after ');
    upstream.write('your FIN');
    t.is(await reply, 'reply after your FIN');
    upstream.end();
    await ended(client);
  });
});

test('origin FIN reaches the client as end, and the client can still send', async (t) => {
  const { origin, socket: originSocket } = await originWithSocket();
  await withTunnel(startProxy(), `127.0.0.1:${origin.port}`, [origin], async ({ socket: client }) => {
    const upstream = await originSocket;
    const goodbye = readUntil(client, (text) => text === 'bye');
    upstream.end('bye');
    t.is(await goodbye, 'bye');
    await ended(client);
    const late = readUntil(upstream, (text) => text === 'sent after your FIN');
    client.write('sent after ');
    client.write('your FIN');
    t.is(await late, 'sent after your FIN');
    client.end();
    await ended(upstream);
  });
});

test('the tunnel fully closes once both directions are done', async (t) => {
  const { origin, socket: originSocket } = await originWithSocket();
  const proxy = await startProxy();
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket: client }) => {
    const upstream = await originSocket;
    t.is(proxy.server.connections, 1);
    client.end();
    await ended(upstream);
    upstream.end();
    await ended(client);
    await Promise.all([closed(client), closed(upstream)]);
    t.true(client.destroyed);
    t.true(upstream.destroyed);
    t.true(await pollUntil(() => proxy.server.connections === 0), `still ${proxy.server.connections} open`);
  });
});

test('the tunnel fully closes when the origin finishes first', async (t) => {
  const { origin, socket: originSocket } = await originWithSocket();
  const proxy = await startProxy();
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket: client }) => {
    const upstream = await originSocket;
    upstream.end('x');
    await ended(client);
    client.end('y');
    await ended(upstream);
    await Promise.all([closed(client), closed(upstream)]);
    t.true(await pollUntil(() => proxy.server.connections === 0), `still ${proxy.server.connections} open`);
  });
});

test('an origin that resets mid-tunnel takes the client connection down', async (t) => {
  const { origin, socket: originSocket } = await originWithSocket();
  const proxy = await startProxy();
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket: client }) => {
    const upstream = await originSocket;
    const first = readUntil(client, (text) => text === 'partial');
    upstream.write('partial');
    t.is(await first, 'partial');
    const seen = collect(client);
    upstream.resetAndDestroy();
    // The proxy destroys its side: the client sees FIN or reset, and nothing more arrives.
    const { text } = await seen;
    t.is(text, '');
    client.end();
    await closed(client);
    t.true(await pollUntil(() => proxy.server.connections === 0), `still ${proxy.server.connections} open`);
  });
});

test('a client that destroys its socket mid-tunnel takes the origin connection down', async (t) => {
  const { origin, socket: originSocket } = await originWithSocket();
  const proxy = await startProxy();
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket: client }) => {
    const upstream = await originSocket;
    const first = readUntil(upstream, (text) => text === 'hello');
    client.write('hello');
    t.is(await first, 'hello');
    // Unread bytes in the client's receive buffer make destroy() send a reset, not a FIN.
    upstream.write('unread by the client');
    await pollUntil(() => client.readableLength > 0 || client.bytesRead > 0, 80);
    const seen = collect(upstream);
    client.resetAndDestroy();
    await seen;
    upstream.end();
    await closed(upstream);
    t.true(await pollUntil(() => proxy.server.connections === 0), `still ${proxy.server.connections} open`);
  });
});

test('a client that destroys its socket (FIN) while the origin keeps sending takes the origin down', async (t) => {
  const { origin, socket: originSocket } = await originWithSocket();
  const proxy = await startProxy();
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket: client }) => {
    const upstream = await originSocket;
    client.destroy();
    // The proxy sees a FIN, passes it on; the next bytes the origin sends hit a closed client,
    // which answers with a reset, and the proxy must then close the upstream.
    await ended(upstream);
    for (let i = 0; i < 100 && !upstream.destroyed; i++) {
      upstream.write(Buffer.alloc(16 * 1024, 1));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    t.true(upstream.destroyed, 'the origin connection was closed');
    t.true(await pollUntil(() => proxy.server.connections === 0), `still ${proxy.server.connections} open`);
  });
});
