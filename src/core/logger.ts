import type { InjectionToken } from 'tsyringe';

/** Fields attached to a log record. */
export type LogFields = Record<string, unknown>;

/** The logging service plugins and the core use; swap it by registering another under `Logger`. */
export interface Logger {
  /** Records normal operation: a request done (the `logger` plugin), start-up. */
  info(message: string, fields?: LogFields): void;
  /** Records trouble the proxy survives: refused connections, dropped log records, no file descriptors. */
  warn(message: string, fields?: LogFields): void;
  /** Records a failure of the proxy itself: a bug, a plugin that threw in a hook. */
  error(message: string, fields?: LogFields): void;
}

/** Token for the {@link Logger} service. */
export const Logger: InjectionToken<Logger> = Symbol('Logger');

/**
 * Writes one line per record to a stream (stderr by default, so stdout stays for the CLI). Lines
 * written in one turn of the event loop go out in one write: on Linux, stderr to a file, a pipe
 * or a terminal is written synchronously, so a line per request would be a system call per
 * request. Every StreamLogger on the same stream shares one batch, so lines keep their order;
 * the batch is written at the end of the turn (setImmediate), or, within FLUSH_GAP_MS of the last
 * write, when that gap is over; at 64 KiB; and at process exit.
 */
export class StreamLogger implements Logger {
  private readonly batch: LineBatch;

  constructor(out: NodeJS.WritableStream = process.stderr) {
    this.batch = batchFor(out);
  }

  info(message: string, fields?: LogFields): void {
    this.write('info', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.write('warn', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.write('error', message, fields);
  }
  private write(level: string, message: string, fields?: LogFields): void {
    const extra = fields ? ' ' + JSON.stringify(fields) : '';
    this.batch.add(`${isoNow()} ${level} ${message}${extra}\n`);
  }
}

/** The ISO time of the current millisecond, formatted once per millisecond however many lines share it. */
let lastMs = -1;
let lastIso = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

/** A batch is written once it holds this much, without waiting for the end of the turn. */
const BATCH_BYTES = 64 * 1024;

/**
 * Writes to one stream are at least this far apart: a line waits this long at most. Under load a
 * turn of the event loop handles one or two connections, so a write per turn was still about a
 * write per tunnel (8 µs of its CPU, measured); a quiet proxy's line still goes out in its turn.
 */
const FLUSH_GAP_MS = 10;

/** The lines waiting for one stream. */
class LineBatch {
  private text = '';
  private scheduled = false;
  private lastWrite = -Infinity;
  private readonly flushNow = () => this.flush();

  constructor(private readonly out: NodeJS.WritableStream) {}

  add(line: string): void {
    this.text += line;
    if (this.text.length >= BATCH_BYTES) return this.flush();
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastWrite + FLUSH_GAP_MS - performance.now();
    // Unref'd: a pending batch does not keep the process alive; exit writes it (flushLogs).
    if (wait > 0) setTimeout(this.flushNow, wait).unref();
    else setImmediate(this.flushNow);
  }

  flush(): void {
    this.scheduled = false;
    if (this.text === '') return;
    const text = this.text;
    this.text = '';
    this.lastWrite = performance.now();
    this.out.write(text);
  }
}

const batches = new Map<NodeJS.WritableStream, LineBatch>();

function batchFor(out: NodeJS.WritableStream): LineBatch {
  let batch = batches.get(out);
  if (!batch) {
    batch = new LineBatch(out);
    if (batches.size === 0) process.once('exit', flushAll);
    batches.set(out, batch);
  }
  return batch;
}

/** Writes out every batch: at exit (a crash or process.exit() included), or when a caller must see the lines now. */
export function flushLogs(): void {
  for (const batch of batches.values()) batch.flush();
}
const flushAll = () => flushLogs();

/** Drops everything (tests, embedding). */
export class SilentLogger implements Logger {
  info(): void {}
  warn(): void {}
  error(): void {}
}
