// What the soak's origins and clients share: the byte pattern every body is cut from (so any
// receiver can check a body without keeping a copy), the tally of how every request ended, the
// set of open client sockets (closed at the end whatever happens), and small helpers.
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { Writable } from 'node:stream';

/** Random bytes; a body is the pattern read from `offset` on, wrapping around. Odd length, so wraps land anywhere. */
export const PATTERN = randomBytes(256 * 1024 + 7);

/** Largest piece handed to a socket in one write. */
const PIECE = 16 * 1024;

/** Writes `size` pattern bytes from `offset` with backpressure, then calls `done` (not if the stream is destroyed). */
export function writePattern(stream: Writable, offset: number, size: number, done: () => void): void {
  let sent = 0;
  const write = (): void => {
    while (sent < size) {
      if (stream.destroyed) return;
      const start = (offset + sent) % PATTERN.length;
      const n = Math.min(PIECE, size - sent, PATTERN.length - start);
      sent += n;
      if (!stream.write(PATTERN.subarray(start, start + n))) return void stream.once('drain', write);
    }
    done();
  };
  write();
}

/** Checks, chunk by chunk, that what arrives is the pattern from `offset` on. */
export class PatternCheck {
  /** Bytes seen so far. */
  received = 0;
  /** Where the first wrong byte was, if one came. */
  mismatchAt?: number;

  constructor(private readonly offset: number) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.mismatchAt === undefined) {
      const start = (this.offset + this.received + at) % PATTERN.length;
      const n = Math.min(chunk.length - at, PATTERN.length - start);
      if (PATTERN.compare(chunk, at, at + n, start, start + n) !== 0) this.mismatchAt = this.received + at;
      at += n;
    }
    this.received += chunk.length;
  }

  /** undefined when exactly `size` correct bytes came, else why not. */
  verdict(size: number): string | undefined {
    if (this.mismatchAt !== undefined) return `body differs from what was sent at byte ${this.mismatchAt} of ${size}`;
    if (this.received !== size) return `body of ${this.received} bytes, expected ${size}`;
    return undefined;
  }
}

/** How many reasons of each list are kept verbatim. */
const FIRST_REASONS = 5;

/** Every request, counted: well-behaved ones done or failed, the others by how they ended. */
export class Tally {
  readonly started = performance.now();
  /** Well-behaved requests completed and checked, by kind. */
  readonly done = new Map<string, number>();
  /** Well-behaved requests that failed, by kind. */
  readonly failed = new Map<string, number>();
  /** The first failures, with when and what. */
  readonly firstFailures: string[] = [];
  /** Failure reasons with counts (the reason text without numbers that vary). */
  readonly failureReasons = new Map<string, number>();
  /** Faulty and idle clients: kind → how it ended → count. */
  readonly outcomes = new Map<string, Map<string, number>>();

  ok(kind: string): void {
    this.done.set(kind, (this.done.get(kind) ?? 0) + 1);
  }

  fail(kind: string, what: string, reason: string): void {
    this.failed.set(kind, (this.failed.get(kind) ?? 0) + 1);
    const seconds = ((performance.now() - this.started) / 1000).toFixed(1);
    if (this.firstFailures.length < FIRST_REASONS) this.firstFailures.push(`[${seconds} s] ${kind} ${what}: ${reason}`);
    const key = `${kind}: ${reason.replace(/\d+/g, 'N')}`;
    this.failureReasons.set(key, (this.failureReasons.get(key) ?? 0) + 1);
  }

  outcome(kind: string, how: string): void {
    let map = this.outcomes.get(kind);
    if (!map) this.outcomes.set(kind, (map = new Map<string, number>()));
    map.set(how, (map.get(how) ?? 0) + 1);
  }

  /** Well-behaved requests failed, all kinds. */
  get failures(): number {
    let sum = 0;
    for (const n of this.failed.values()) sum += n;
    return sum;
  }
}

/** Client sockets open right now; `closeAll` destroys them (end of run, error, Ctrl-C). */
export const openSockets = new Set<net.Socket>();

/** Registers a client socket until it closes; adds the 'error' listener every socket needs. */
export function track<T extends net.Socket>(socket: T): T {
  openSockets.add(socket);
  socket.on('error', () => {});
  socket.once('close', () => openSockets.delete(socket));
  return socket;
}

/** Sockets `closeAll` destroyed: their clients were closed by the soak, not by the proxy. */
const closedBySoak = new WeakSet<net.Socket>();

/** Destroys every client socket still open. */
export function closeAll(): void {
  for (const socket of openSockets) {
    closedBySoak.add(socket);
    socket.destroy();
  }
  openSockets.clear();
}

/** Whether `closeAll` closed this socket. */
export const closedByTheSoak = (socket: net.Socket) => closedBySoak.has(socket);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** An integer in [min, max]. */
export const between = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));
/** One of the items, uniformly. */
export const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** What every client kind gets: where to connect, the tally, and when to stop. */
export interface ClientContext {
  proxyPort: number;
  ports: OriginPorts;
  tally: Tally;
  /** True once the load phase is over: loops finish the iteration they are in, then stop. */
  stopping: () => boolean;
  /** How long a client waiting for the proxy to close a stalled connection waits before it gives up. */
  giveUpMs: number;
}

/** The origins' ports (all on 127.0.0.1). */
export interface OriginPorts {
  http: number;
  https: number;
  echo: number;
}

/** Runs `iteration` again and again until stopping; a throw is a bug in the client, counted as a failure of `kind`. */
export async function loop(ctx: ClientContext, kind: string, iteration: () => Promise<void>, pauseMs = 0): Promise<void> {
  while (!ctx.stopping()) {
    try {
      await iteration();
    } catch (error) {
      ctx.tally.fail(kind, 'client', `client threw: ${(error as Error).message}`);
    }
    if (pauseMs > 0) await sleep(between(0, pauseMs));
  }
}
