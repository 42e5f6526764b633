// A connection that closed must be garbage: nothing the proxy keeps (a timer, a registry, a pool)
// may hold it. A plugin keeps a WeakRef to each connection's context; after the close is
// reported, full GCs run until the context is gone (bounded). A retained connection holds its
// sockets, stages and exchanges: at thousands of tunnels a second that is memory that grows
// and work for the old-generation GC on every new one.
import { once } from 'node:events';
import net from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import test, { type ExecutionContext } from 'ava';
import type { ConnectionContext } from '../../src/core/context.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { connectTo, openTunnel, readUntil, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { pollUntil } from '../helpers/wire.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A plugin that holds each connection's context weakly and counts the closes reported. */
function releaseProbe() {
  const contexts: WeakRef<ConnectionContext>[] = [];
  let closes = 0;
  const plugin: ProxyPlugin = {
    name: 'release-probe',
    inbound: (ctx) => {
      contexts.push(new WeakRef(ctx));
      return (source) => source;
    },
    onClose: () => {
      closes++;
    },
  };
  return {
    plugin,
    contexts,
    get closes() {
      return closes;
    },
  };
}

/** True once every context the probe saw was collected, after at most 20 full GCs a turn apart. */
async function allCollected(contexts: readonly WeakRef<ConnectionContext>[]): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    await nextTurn();
    gc();
    if (contexts.every((ref) => ref.deref() === undefined)) return true;
  }
  return false;
}

/** Asserts that the proxy reported the one connection's close and that the connection was then collected. */
async function assertReleased(t: ExecutionContext, probe: ReturnType<typeof releaseProbe>): Promise<void> {
  t.true(await pollUntil(() => probe.closes === 1), 'the proxy reported the close');
  t.true(await allCollected(probe.contexts), 'the closed connection was collected');
}

/** Ends the client side cleanly (FIN), reads whatever still comes, and waits for the close. */
async function endAndWaitClose(socket: net.Socket): Promise<void> {
  socket.end();
  socket.resume();
  await once(socket, 'close');
}

/** A raw origin that echoes and ends its side when the client ends (a clean close both ways). */
function startEchoOrigin() {
  return startRawOrigin((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
}

async function proxyWithProbe() {
  const probe = releaseProbe();
  const proxy = await startProxy({ plugins: ['head-parser', probe.plugin, 'connect-handler', 'http-forward', 'upstream-dialer'] });
  return { probe, proxy };
}

test('a CONNECT tunnel closed cleanly both ways is released (its idle watchdog does not hold it)', async (t) => {
  const origin = await startEchoOrigin();
  const { probe, proxy } = await proxyWithProbe();
  try {
    const { socket, head } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    t.true(head.startsWith('HTTP/1.1 200'));
    socket.write('ping');
    t.is(await readUntil(socket, (text) => text.includes('ping')), 'ping');
    await endAndWaitClose(socket);
    await assertReleased(t, probe);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a CONNECT tunnel the client reset is released', async (t) => {
  const origin = await startEchoOrigin();
  const { probe, proxy } = await proxyWithProbe();
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    socket.resetAndDestroy();
    await assertReleased(t, probe);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a kept-alive HTTP connection the client closed after its responses is released', async (t) => {
  const origin = await startHttpOrigin((_req, res) => res.end('ok'));
  const { probe, proxy } = await proxyWithProbe();
  try {
    const url = `http://127.0.0.1:${origin.port}/`;
    const socket: net.Socket = await connectTo(proxy.port, `GET ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    const text = await readUntil(socket, (received) => received.split('HTTP/1.1 200').length === 3 && received.endsWith('ok'));
    t.is(text.split('HTTP/1.1 200').length, 3, 'both responses arrived');
    await endAndWaitClose(socket);
    await assertReleased(t, probe);
  } finally {
    await proxy.close();
    await origin.close();
  }
});
