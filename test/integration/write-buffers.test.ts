import { once } from 'node:events';
import test from 'ava';
import { tap } from 'rxjs';
import type { ConnectionContext } from '../../src/core/context.js';
import type { Exchange } from '../../src/core/exchange.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { openTunnel, startProxy, startRawOrigin } from '../helpers/net.js';

const MB = 1024 * 1024;
const TOTAL = 64 * MB;
/**
 * What the proxy may hold in its own socket write buffers, never the transfer: it writes only while
 * a buffer is under its high-water mark (16 KiB), and then one read, up to 256 KiB (a dialled
 * socket's bulk reads; 64 KiB from a client).
 */
const BOUND = 16 * 1024 + 256 * 1024;

/**
 * A plugin that hands over each connection's context, and a sampler that records, every
 * millisecond, the bytes waiting in the proxy's own write buffers in each direction.
 */
function bufferProbe() {
  const peak = { toUpstream: 0, toClient: 0 };
  let ctx: ConnectionContext | undefined;
  let exchange: Exchange | undefined;
  const plugin: ProxyPlugin = {
    name: 'buffer-probe',
    inbound: (connection: ConnectionContext) => {
      ctx = connection;
      return tap((event) => {
        if (event.kind === 'request-head') exchange = event.exchange;
      });
    },
  };
  const timer = setInterval(() => {
    if (!ctx) return;
    peak.toUpstream = Math.max(peak.toUpstream, exchange?.upstream?.writableLength ?? 0);
    peak.toClient = Math.max(peak.toClient, ctx.client.writableLength);
  }, 1);
  return { peak, plugin, stop: () => clearInterval(timer) };
}

/** Reads everything, pausing 20 ms after each MiB: a reader much slower than loopback. */
async function readSlowly(socket: NodeJS.ReadableStream & { pause(): void; resume(): void }): Promise<number> {
  let bytes = 0;
  let sinceBreak = 0;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    sinceBreak += chunk.length;
    if (sinceBreak >= MB) {
      sinceBreak = 0;
      socket.pause();
      setTimeout(() => socket.resume(), 20);
    }
  });
  await once(socket, 'end');
  return bytes;
}

const CHUNK = Buffer.alloc(64 * 1024, 1);
async function writeFast(socket: NodeJS.WritableStream): Promise<void> {
  for (let sent = 0; sent < TOTAL; sent += CHUNK.length) {
    if (!socket.write(CHUNK)) await once(socket, 'drain');
  }
  socket.end();
}

test.serial('a slow origin keeps the proxy’s write buffer towards it bounded', async (t) => {
  let received!: Promise<number>;
  const origin = await startRawOrigin((socket) => {
    received = readSlowly(socket);
    received.then(
      () => socket.end(),
      () => socket.destroy(),
    );
  });
  const probe = bufferProbe();
  const proxy = await startProxy({ plugins: ['head-parser', 'connect-handler', 'upstream-dialer', probe.plugin] });
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    socket.resume();
    await writeFast(socket);
    t.is(await received, TOTAL);
    t.log(`largest write buffer towards the origin: ${probe.peak.toUpstream} bytes`);
    t.true(probe.peak.toUpstream > 0, 'the probe saw the buffer fill');
    t.true(probe.peak.toUpstream <= BOUND, `${probe.peak.toUpstream} bytes buffered`);
    socket.destroy();
  } finally {
    probe.stop();
    await proxy.close();
    await origin.close();
  }
});

test.serial('a slow client keeps the proxy’s write buffer towards it bounded', async (t) => {
  const origin = await startRawOrigin((socket) => {
    socket.once('data', () => void writeFast(socket).catch(() => socket.destroy()));
  });
  const probe = bufferProbe();
  const proxy = await startProxy({ plugins: ['head-parser', 'connect-handler', 'upstream-dialer', probe.plugin] });
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    const reading = readSlowly(socket);
    socket.write('go');
    t.is(await reading, TOTAL);
    t.log(`largest write buffer towards the client: ${probe.peak.toClient} bytes`);
    t.true(probe.peak.toClient > 0, 'the probe saw the buffer fill');
    t.true(probe.peak.toClient <= BOUND, `${probe.peak.toClient} bytes buffered`);
    socket.destroy();
  } finally {
    probe.stop();
    await proxy.close();
    await origin.close();
  }
});
