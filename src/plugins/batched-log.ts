import { constants } from 'node:fs';
import type { Logger } from '../core/logger.js';
import { Throttle } from '../core/throttle.js';
import { LineBuffer } from './access-log-lines.js';
import type { LossListener } from './log-destination.js';

/** Where a {@link BatchedLog} hands its batches: a {@link LogDestination}, or capture's rotating file. */
export interface BatchDestination {
  /** Queues a batch of whole lines for writing, or drops it and reports the loss. */
  write(batch: Buffer): void;
  /** Writes out what waits, then closes; what is left after about `timeoutMs` is reported lost. Never rejects. */
  close(timeoutMs: number): Promise<void>;
}

/** How a {@link BatchedLog} names itself and counts what it loses. */
export interface BatchedLogOptions {
  /** The plugin's name: the first word of its warnings. */
  readonly name: string;
  /** Where the lines go (a path, `stdout`), for warnings. */
  readonly where: string;
  /** Bytes of lines that may wait for the destination; batches are a quarter of it at most. */
  readonly maxBufferBytes: number;
  /** Adds lost records to the plugin's counter (a ProxyStats field); returns its new total. */
  readonly count: (records: number) => number;
  /** Where losses are warned, once a minute at most. */
  readonly logger: Logger;
}

/**
 * Append, create, and non-blocking: a FIFO or pipe that nobody reads then answers EAGAIN (retried
 * every 100 ms) instead of blocking a libuv thread-pool thread in write(2) for good, which would
 * also keep the process from exiting (libuv joins its threads at exit). A FIFO without a reader
 * fails start-up (ENXIO) instead of blocking it. No effect on regular files.
 */
export const OPEN_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;

/**
 * The part a log plugin shares with the others (access-log, capture): lines collected in a
 * {@link LineBuffer} and handed to the destination in batches (BATCH_BYTES, or each second)
 * instead of one write per record; lost records counted and warned about at most once a minute;
 * a bounded close. The plugin adds lines to `lines`, then calls `added()`.
 */
export class BatchedLog {
  /** Lines not yet handed to the destination. */
  readonly lines: LineBuffer;
  private readonly out: BatchDestination;
  /** A batch is handed over once it holds this many bytes: BATCH_BYTES, or less under a small cap so that batches fit in it. */
  private readonly batchBytes: number;
  private readonly flusher: NodeJS.Timeout;
  /** One warning a minute about lost records, however often they are lost. */
  private readonly warnings = new Throttle(60_000);
  /** Records lost since the last warning. */
  private unreported = 0;
  private isClosed = false;

  constructor(
    private readonly options: BatchedLogOptions,
    /** Makes the destination, given the listener it reports losses to. */
    open: (onLoss: LossListener) => BatchDestination,
  ) {
    this.batchBytes = Math.min(BATCH_BYTES, Math.floor(options.maxBufferBytes / 4));
    this.lines = new LineBuffer(this.batchBytes + 16 * 1024);
    this.out = open(this.onLoss);
    this.flusher = setInterval(() => this.handOver(), 1000);
    this.flusher.unref();
  }

  /** True once `close()` was called: records that end later are not written. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Called after lines were added: hands the batch over once it is big enough. */
  added(): void {
    if (this.lines.size >= this.batchBytes) this.handOver();
  }

  /**
   * Writes out what is waiting and closes the destination. Asynchronous, as a synchronous flush
   * would block the process for good on a full pipe; bounded: what is still unwritten after
   * CLOSE_TIMEOUT_MS is dropped and counted.
   */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    clearInterval(this.flusher);
    this.handOver();
    await this.out.close(CLOSE_TIMEOUT_MS);
    if (this.unreported > 0) this.warnLoss('reported at shutdown');
  }

  /** Gives the batch to the destination, which writes it asynchronously, in order. */
  private handOver(): void {
    const bytes = this.lines.take();
    if (bytes) this.out.write(bytes);
  }

  /** Counts lost records, and warns once a minute at most. */
  private readonly onLoss = (records: number, cause: string): void => {
    this.options.count(records);
    this.unreported += records;
    if (this.warnings.take() !== undefined) this.warnLoss(CAUSES[cause] ?? `write error ${cause}`);
  };

  private warnLoss(why: string): void {
    const { name, where, count, logger } = this.options;
    logger.warn(`${name}: ${this.unreported} records dropped since the last warning (${why})`, {
      path: where,
      dropped: this.unreported,
      droppedTotal: count(0),
    });
    this.unreported = 0;
  }
}

/** How long close() waits for the destination to take what is waiting. */
const CLOSE_TIMEOUT_MS = 2000;

/** Why records were lost, by the destination's cause. */
const CAUSES: Record<string, string> = {
  full: 'the destination cannot keep up: maxBufferBytes are waiting',
  timeout: 'not written when shutdown stopped waiting',
  closed: 'written after close',
};

/**
 * A batch is written once it holds this many bytes (about 250 access-log records), or each
 * second. Each asynchronous write costs about 50 µs of CPU on top of the write itself (the
 * hand-over to libuv's thread pool and back): about 0.2 µs per record at this size, 0.8 µs at 16 KiB.
 */
const BATCH_BYTES = 64 * 1024;
