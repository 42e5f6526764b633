import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { measureTunnel, startWarmOrigin, type RssGrowth } from '../helpers/tunnel-memory.js';

const TOTAL = 200 * 1024 * 1024;
const CHUNK = 64 * 1024;
const MB = 1024 * 1024;
/** The proxy's RSS may grow by this much at most while 200 MB pass through it. */
const LIMIT = 64 * MB;
/** The slow side pauses this long after each MiB it reads (so 200 MB take several seconds). */
const PAUSE_MS = 25;
const CHAIN = [{ name: 'head-parser' }, { name: 'connect-handler' }, { name: 'http-forward' }, { name: 'upstream-dialer' }, { name: 'byte-counter' }];

const BLOCK = randomBytes(CHUNK);
/** Chunk `i` of the stream: a random block with its index stamped in, so reordering or loss shows in the hash. */
function chunkAt(i: number): Buffer {
  const chunk = Buffer.from(BLOCK);
  chunk.writeUInt32BE(i, 0);
  chunk.writeUInt32BE(i, CHUNK - 4);
  return chunk;
}

/** Writes TOTAL bytes to `socket`, waiting for 'drain' when asked to; returns the sha256 of what was written. */
async function writeAll(socket: net.Socket): Promise<string> {
  const hash = createHash('sha256');
  for (let i = 0; i < TOTAL / CHUNK; i++) {
    const chunk = chunkAt(i);
    hash.update(chunk);
    if (!socket.write(chunk)) await once(socket, 'drain');
    if (socket.destroyed) throw new Error('socket destroyed while writing');
  }
  return hash.digest('hex');
}

/** Reads a socket slowly to its end: pauses PAUSE_MS after each MiB. Resolves byte count and sha256. */
function readSlowly(socket: net.Socket, timeoutMs = 90_000): Promise<{ bytes: number; hash: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let sinceBreak = 0;
    const timer = setTimeout(() => reject(new Error(`only ${bytes} bytes before the safety limit`)), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      sinceBreak += chunk.length;
      if (sinceBreak >= MB) {
        sinceBreak = 0;
        socket.pause();
        setTimeout(() => socket.resume(), PAUSE_MS);
      }
    });
    socket.once('end', () => {
      clearTimeout(timer);
      resolve({ bytes, hash: hash.digest('hex') });
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`closed after ${bytes} bytes without end`));
    });
  });
}

/** Logs the proxy's RSS growth and asserts it stayed under LIMIT. */
function assertBounded(t: ExecutionContext, { baseline, peak }: RssGrowth): void {
  t.log(`proxy RSS baseline ${(baseline / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB, growth ${((peak - baseline) / MB).toFixed(1)} MB`);
  t.true(peak - baseline < LIMIT, `proxy RSS grew by ${((peak - baseline) / MB).toFixed(1)} MB`);
}

test.serial('200 MB from client to a slow origin pass through a tunnel with bounded proxy memory', async (t) => {
  let received!: Promise<{ bytes: number; hash: string }>;
  const origin = await startWarmOrigin((socket) => {
    received = readSlowly(socket);
    received.then(
      () => socket.end(),
      () => socket.destroy(),
    );
  });
  try {
    let sent = '';
    let result!: { bytes: number; hash: string };
    const growth = await measureTunnel(CHAIN, origin.port, async ({ socket, head }) => {
      t.is(head, 'HTTP/1.1 200 Connection Established\r\n\r\n');
      socket.resume();
      sent = await writeAll(socket);
      socket.end();
      result = await received;
    });
    assertBounded(t, growth);
    t.is(result.bytes, TOTAL);
    t.is(result.hash, sent);
  } finally {
    await origin.close();
  }
});

test.serial('200 MB from a fast origin to a slow client pass through a tunnel with bounded proxy memory', async (t) => {
  let sent!: Promise<string>;
  const origin = await startWarmOrigin((socket) => {
    // Start only when the client says so, after it has read the 200 of the tunnel.
    sent = once(socket, 'data')
      .then(() => writeAll(socket))
      .then((hash) => {
        socket.end();
        return hash;
      });
    sent.catch(() => {});
  });
  try {
    let result!: { bytes: number; hash: string };
    const growth = await measureTunnel(CHAIN, origin.port, async ({ socket, head }) => {
      t.is(head, 'HTTP/1.1 200 Connection Established\r\n\r\n');
      const reading = readSlowly(socket);
      socket.write('go');
      result = await reading;
    });
    assertBounded(t, growth);
    t.is(result.bytes, TOTAL);
    t.is(result.hash, await sent);
  } finally {
    await origin.close();
  }
});
