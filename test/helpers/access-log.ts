// Set-up of the access-log (and capture) tests: the chain that logs to a file, and a FIFO destination
// whose reading the test controls, to stall the log or break it. Everything they open, they close.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { container } from 'tsyringe';
import { Logger } from '../../src/core/logger.js';
import type { PluginSpec } from '../../src/core/registry.js';
import { createStats, ProxyStats } from '../../src/core/stats.js';
import { exchange, get, ok, openClient, startKeepAliveOrigin } from './keep-alive.js';
import { startProxy } from './net.js';
import { withTempDir } from './temp.js';

/** The routing plugins every access-log chain starts with. */
export const ROUTING = ['head-parser', 'connect-handler', 'http-forward'];

/** A chain that forwards, counts bytes, then logs to `file` (with more access-log `options`). */
export const loggingChain = (file: string, options: Record<string, unknown> = {}): PluginSpec[] => [
  ...ROUTING,
  'upstream-dialer',
  'byte-counter',
  { name: 'access-log', options: { path: file, ...options } },
];

/** A Logger that keeps what is warned. */
export class RecordingLogger implements Logger {
  readonly warnings: string[] = [];
  info(): void {}
  warn(message: string): void {
    this.warnings.push(message);
  }
  error(message: string): void {
    this.warnings.push(message);
  }
}

/** What {@link withFifoLog} hands to its body. */
export interface FifoLog {
  /** A proxy logging to the FIFO, and the ProxyStats and warnings it records into. */
  proxy: Awaited<ReturnType<typeof startProxy>>;
  stats: ProxyStats;
  logger: RecordingLogger;
  /** An origin answering `fine` to every request. */
  origin: Awaited<ReturnType<typeof startKeepAliveOrigin>>;
  /** The FIFO's read side (non-blocking): read with {@link readAvailable}. */
  reader: number;
  /** Bytes the FIFO's pipe holds before a writer must wait. */
  capacity: number;
  /** Closes the read side (once): the proxy's writes fail with EPIPE from then on. */
  closeReader: () => void;
}

/** Makes a chain that logs to `file` with more options for the logging plugin (`loggingChain` for access-log). */
export type LogChain = (file: string, options: Record<string, unknown>) => PluginSpec[];

/**
 * Runs `body` with a proxy whose access log (or whatever log `chain` writes) goes to a FIFO that
 * nobody reads unless the test does, capped at `maxBufferBytes`. Closes the read side, the proxy
 * and the origin, and removes the FIFO, whatever happens.
 */
export async function withFifoLog(maxBufferBytes: number, body: (log: FifoLog) => Promise<void>, chain: LogChain = loggingChain): Promise<void> {
  await withTempDir('access-log-', async (dir) => {
    const { file, reader } = openFifo(dir);
    let readerOpen = true;
    const closeReader = () => {
      if (readerOpen) closeSync(reader);
      readerOpen = false;
    };
    let origin: FifoLog['origin'] | undefined;
    let proxy: FifoLog['proxy'] | undefined;
    try {
      origin = await startKeepAliveOrigin(() => ok('fine'));
      const capacity = pipeCapacity(file, reader);
      const services = container.createChildContainer();
      const logger = new RecordingLogger();
      services.registerInstance(Logger, logger);
      services.registerInstance(ProxyStats, createStats());
      proxy = await startProxy({ container: services, plugins: chain(file, { maxBufferBytes }) });
      await body({ proxy, stats: services.resolve(ProxyStats), logger, origin, reader, capacity, closeReader });
    } finally {
      // The read side first: a close() that finds the pipe full gives up at once on EPIPE.
      closeReader();
      await proxy?.close();
      await origin?.close();
    }
  });
}

/** Appends what the FIFO holds now to `chunks`; true at end of file (every writer closed it, and it is empty). */
export function readAvailable(reader: number, chunks: Buffer[]): boolean {
  const buffer = Buffer.allocUnsafe(64 * 1024);
  for (let reads = 0; reads < 1000; reads++) {
    let size: number;
    try {
      size = readSync(reader, buffer, 0, buffer.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return false;
      throw error;
    }
    if (size === 0) return true;
    chunks.push(Buffer.from(buffer.subarray(0, size)));
  }
  return false;
}

/** A FIFO in `dir` with its read side open (non-blocking), so the proxy can open the write side; read only when a test says so. */
function openFifo(dir: string): { file: string; reader: number } {
  const file = path.join(dir, 'access.fifo');
  execFileSync('mkfifo', [file]);
  return { file, reader: openSync(file, constants.O_RDONLY | constants.O_NONBLOCK) };
}

/** Bytes the FIFO's pipe holds before a writer must wait: filled page by page through a writer of our own, then read back. */
function pipeCapacity(file: string, reader: number): number {
  const writer = openSync(file, constants.O_WRONLY | constants.O_NONBLOCK);
  const page = Buffer.alloc(4096);
  let capacity = 0;
  try {
    for (let pages = 0; pages < 4096; pages++) {
      try {
        capacity += writeSync(writer, page);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw error;
      }
    }
    const chunks: Buffer[] = [];
    readAvailable(reader, chunks);
    if (Buffer.concat(chunks).length !== capacity) throw new Error('the pipe was not read back whole');
  } finally {
    closeSync(writer);
  }
  return capacity;
}

/**
 * Sends `count` requests on one kept-alive connection, each target 1 KiB long so each record is
 * too; returns how many were answered 200 "fine" (the origin of {@link withFifoLog}).
 */
export async function sendPaddedRequests(proxyPort: number, originPort: number, count: number, tag: string): Promise<number> {
  const client = await openClient(proxyPort);
  let answered = 0;
  try {
    for (let i = 0; i < count; i++) {
      const response = await exchange(client, get(originPort, `/${tag}/${'p'.repeat(1024)}/${i}`));
      if (response.status === 200 && response.body === 'fine') answered++;
    }
    client.socket.end();
    await client.reader.waitEnd();
  } finally {
    client.socket.destroy();
  }
  return answered;
}

/**
 * The records in the complete lines read from a FIFO (each must be whole JSON). A last line
 * without its newline is a record cut off when close() gave up on a full pipe: counted as dropped.
 */
export function parseJsonLines<T>(chunks: Buffer[]): T[] {
  return Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .slice(0, -1)
    .map((line) => JSON.parse(line) as T);
}
