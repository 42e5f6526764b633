import { spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { createStats } from '../../src/core/stats.js';
import { TcpDialer } from '../../src/transports/tcp-dialer.js';
import { runToExit } from '../helpers/cli.js';
import { closedPort, startRawOrigin } from '../helpers/net.js';

/** The compiled dialer and stats, which the child imports. */
const DIST = path.join(process.cwd(), 'dist/src');

/**
 * Runs in a child under `ulimit -n 64` (a process cannot lower its own limit): takes every
 * descriptor left, dials `port` DIALS times at once, frees the descriptors, dials once more, and
 * prints what happened as JSON.
 */
const SCRIPT = `
import { closeSync, openSync } from 'node:fs';
const { TcpDialer } = await import(process.env.DIST + '/transports/tcp-dialer.js');
const { createStats } = await import(process.env.DIST + '/core/stats.js');
const port = Number(process.env.PORT);
const DIALS = Number(process.env.DIALS);
const warnings = [];
const stats = createStats();
const logger = { info() {}, error() {}, warn: (message, fields) => warnings.push({ message, fields }) };
const dialer = new TcpDialer({ stats, logger });
const dial = () => dialer.dial({ host: '127.0.0.1', port }, new AbortController().signal);
const taken = [];
for (let i = 0; i < 1000; i++) {
  try {
    taken.push(openSync('/dev/null', 'r'));
  } catch (error) {
    if (error.code !== 'EMFILE') throw error;
    break;
  }
}
const failed = await Promise.allSettled(Array.from({ length: DIALS }, dial));
for (const fd of taken) closeSync(fd);
const socket = await dial();
socket.destroy();
const errors = failed.map((result) => result.status === 'rejected'
  ? { code: result.reason.code, status: result.reason.status, message: result.reason.message, headers: result.reason.headers, cause: result.reason.cause?.code }
  : 'connected');
process.stdout.write(JSON.stringify({ taken: taken.length, errors, stats, warnings }));
`;

/** What the child printed. */
interface Outcome {
  taken: number;
  errors: ({ code: string; status: number; message: string; headers: string[][]; cause: string } | 'connected')[];
  stats: { dialNoResources: number };
  warnings: { message: string; fields: Record<string, unknown> }[];
}

async function runOutOfDescriptors(port: number, dials: number): Promise<Outcome> {
  const child = spawn('/bin/sh', ['-c', 'ulimit -n 64 && exec "$0" "$@"', process.execPath, '--input-type=module', '-e', SCRIPT], {
    env: { ...process.env, DIST, PORT: String(port), DIALS: String(dials) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { code, stdout, stderr } = await runToExit(child);
  if (code !== 0) throw new Error(`child exited with ${code}: ${stderr}`);
  return JSON.parse(stdout) as Outcome;
}

test('a dial out of file descriptors fails with 503 naming the target, is counted, and warns once a second', async (t) => {
  const origin = await startRawOrigin((socket) => socket.end());
  try {
    const dials = 5;
    const outcome = await runOutOfDescriptors(origin.port, dials);
    t.true(outcome.taken > 0, 'the child had descriptors left to take');
    t.is(outcome.errors.length, dials);
    for (const error of outcome.errors) {
      t.deepEqual(error, {
        code: 'ERR_PROXY_NO_RESOURCES',
        status: 503,
        message: `cannot connect to 127.0.0.1:${origin.port}: the proxy is out of file descriptors (EMFILE)`,
        headers: [['Retry-After', '1']],
        cause: 'EMFILE',
      });
    }
    t.is(outcome.stats.dialNoResources, dials);
    // The dials fail within a few ms, so one warning; a very slow machine may let a second through.
    t.true(outcome.warnings.length >= 1 && outcome.warnings.length < dials, JSON.stringify(outcome.warnings));
    t.deepEqual(outcome.warnings[0], {
      message: 'dial failed: out of file descriptors (EMFILE); answering 503',
      fields: { target: `127.0.0.1:${origin.port}`, dialsFailedSinceLastWarning: 1 },
    });
  } finally {
    await origin.close();
  }
});

test('other connect failures keep their 502', async (t) => {
  const port = await closedPort();
  const stats = createStats();
  const dialer = new TcpDialer({ stats, logger: { info() {}, warn: () => t.fail('no warning'), error() {} } });
  const error = await t.throwsAsync(dialer.dial({ host: '127.0.0.1', port }, new AbortController().signal));
  t.like(error, { code: 'ERR_PROXY_UPSTREAM_CONNECT', status: 502, message: `cannot connect to 127.0.0.1:${port}: connection refused` });
  t.is(stats.dialNoResources, 0);
});

test('dialled sockets share one read buffer, yet every chunk they emit is its own: kept chunks of interleaved reads stay intact', async (t) => {
  // Two origins stream different bytes in many writes; the chunks of both sockets are kept, not
  // consumed, while both keep reading. A chunk that were a view of the shared buffer would be
  // overwritten by the reads after it.
  const SIZE = 1024 * 1024;
  const pattern = (seed: number) => Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 7 + seed * 101 + (i >> 9)) & 0xff));
  const expected = [pattern(1), pattern(2)];
  const origins = await Promise.all(
    expected.map((bytes) =>
      startRawOrigin((socket) => {
        for (let at = 0; at < bytes.length; at += 16 * 1024) socket.write(bytes.subarray(at, at + 16 * 1024));
        socket.end();
      }),
    ),
  );
  t.teardown(async () => {
    await Promise.all(origins.map((origin) => origin.close()));
  });
  const dialer = new TcpDialer({ logger: { info() {}, warn() {}, error() {} } });
  const sockets = await Promise.all(origins.map((origin) => dialer.dial({ host: '127.0.0.1', port: origin.port }, new AbortController().signal)));
  const received = await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<Buffer[]>((resolve, reject) => {
          const chunks: Buffer[] = [];
          socket.on('data', (chunk: Buffer) => chunks.push(chunk));
          socket.on('end', () => resolve(chunks));
          socket.on('error', reject);
          socket.resume();
        }),
    ),
  );
  sockets.forEach((socket) => socket.destroy());
  for (const [i, chunks] of received.entries()) {
    t.true(chunks.length > 1, 'the bytes came in several reads');
    t.true(Buffer.concat(chunks).equals(expected[i]!), `socket ${i + 1} got exactly its origin's bytes`);
  }
});

test('a bulk download reads into buffers of its own, handed on without a copy; a small read after it is copied out, pinning none', async (t) => {
  // 4 MiB as fast as the origin can write, then, once the client has it all and asks, 10 bytes.
  const BULK = 4 * 1024 * 1024;
  const expected = Buffer.from(Array.from({ length: BULK + 10 }, (_, i) => (i * 13 + (i >> 11)) & 0xff));
  const origin = await startRawOrigin((socket) => {
    for (let at = 0; at < BULK; at += 64 * 1024) socket.write(expected.subarray(at, at + 64 * 1024));
    socket.once('data', () => socket.end(expected.subarray(BULK)));
  });
  t.teardown(() => origin.close());
  const dialer = new TcpDialer({ logger: { info() {}, warn() {}, error() {} } });
  const socket = await dialer.dial({ host: '127.0.0.1', port: origin.port }, new AbortController().signal);
  const chunks = await new Promise<Buffer[]>((resolve, reject) => {
    const got: Buffer[] = [];
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      got.push(chunk);
      bytes += chunk.length;
      if (bytes === BULK) socket.write('more');
    });
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
    socket.resume();
  });
  socket.destroy();
  t.true(Buffer.concat(chunks).equals(expected), 'every byte, in order');
  // The shared buffer is 64 KiB, and Node's own reads or a copy are at most that: a chunk over a
  // larger buffer is a bulk read handed on as it is.
  t.true(
    chunks.some((chunk) => chunk.buffer.byteLength > 64 * 1024),
    'some reads of the download went into a bulk buffer',
  );
  t.is(chunks.at(-1)!.length, 10, 'the tail came in a read of its own');
  for (const chunk of chunks.filter((c) => c.length < 64 * 1024)) {
    t.true(chunk.buffer.byteLength <= 64 * 1024, `a ${chunk.length}-byte chunk does not pin a bulk buffer`);
  }
});

test('a socket its reader pauses after each read keeps reading through the shared buffer: no bulk buffer waits while it is paused', async (t) => {
  const BYTES = 2 * 1024 * 1024;
  const expected = Buffer.from(Array.from({ length: BYTES }, (_, i) => (i * 5 + (i >> 12)) & 0xff));
  const origin = await startRawOrigin((socket) => {
    for (let at = 0; at < BYTES; at += 64 * 1024) socket.write(expected.subarray(at, at + 64 * 1024));
    socket.end();
  });
  t.teardown(() => origin.close());
  const dialer = new TcpDialer({ logger: { info() {}, warn() {}, error() {} } });
  const socket = await dialer.dial({ host: '127.0.0.1', port: origin.port }, new AbortController().signal);
  const chunks = await new Promise<Buffer[]>((resolve, reject) => {
    const got: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      got.push(chunk);
      socket.pause(); // as the pipeline does when the destination's write() returns false
      setImmediate(() => socket.resume());
    });
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
    socket.resume();
  });
  socket.destroy();
  t.true(Buffer.concat(chunks).equals(expected), 'every byte, in order');
  t.true(chunks.length >= BYTES / (64 * 1024), 'reads of at most 64 KiB');
  t.true(
    chunks.every((chunk) => chunk.buffer.byteLength <= 64 * 1024),
    'no chunk came from a bulk buffer',
  );
});
