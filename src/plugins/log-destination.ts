// A CommonJS module: its default export is the class, which is also its own `SonicBoom` property.
import sonicBoom from 'sonic-boom';

/**
 * Told how many records were lost and why: `full` (more bytes were waiting than the cap),
 * `timeout` (still unwritten when shutdown stopped waiting), or the write error's code
 * (EPIPE, ENOSPC, EBADF, …; called with 0 records when nothing was waiting).
 */
export type LossListener = (records: number, cause: string) => void;

/**
 * Where the batches of a log (access-log's, capture's) go: an asynchronous SonicBoom whose memory stays bounded and which
 * never crashes the process nor holds it up at exit. At most `maxBytes` wait to be written
 * (SonicBoom's `maxLength`, which counts the batch being written too): a batch that does not fit
 * is dropped whole. A write error drops what was waiting and starts over on the same descriptor,
 * so a full disk that frees up, or a FIFO whose reader comes back, is written to again. Losses
 * are reported in records (one per line) to `onLoss`.
 */
export class LogDestination {
  private out: BufferDestination;
  /** Batches accepted and not completely written yet, oldest first (the same buffers SonicBoom holds). */
  private readonly waiting: Buffer[] = [];
  /** Bytes of `waiting[0]` already written. */
  private firstWritten = 0;
  private waitingBytes = 0;
  private state: 'open' | 'closing' | 'abandoned' | 'closed' = 'open';
  /** Set by the 'drop' listener, which SonicBoom calls from inside `write`. */
  private dropped = false;
  private closing?: Promise<void>;
  private resolveClosing?: () => void;
  private closeTimer?: NodeJS.Timeout;

  constructor(
    /** Opened by the caller; closed here at the end, unless it is stdout or stderr. */
    private readonly fd: number,
    /** Bytes that may wait to be written. */
    private readonly maxBytes: number,
    private readonly onLoss: LossListener,
  ) {
    this.out = this.open();
  }

  /** Bytes handed over and not written yet (at most `maxBytes`). */
  get pendingBytes(): number {
    return this.waitingBytes;
  }

  /** Queues `batch` (whole lines) for writing, or drops it when it does not fit under the cap; true when queued. */
  write(batch: Buffer): boolean {
    if (this.state !== 'open') {
      this.onLoss(countLines(batch, 0), 'closed');
      return false;
    }
    this.dropped = false;
    this.out.write(batch);
    if (this.dropped) return false;
    this.waiting.push(batch);
    this.waitingBytes += batch.length;
    return true;
  }

  /**
   * Writes out what is waiting, then closes the descriptor. Resolves when done, or once
   * `timeoutMs` have passed and SonicBoom was told to stop retrying a destination that takes
   * nothing (a full pipe): what is still waiting then is reported lost. Never rejects. Without
   * a timeout it waits as long as writing takes (a file being rotated); a later call with one
   * bounds the wait from then on (shutdown).
   */
  close(timeoutMs?: number): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.state = 'closing';
      this.resolveClosing = resolve;
      this.out.end();
    });
    if (timeoutMs !== undefined && this.state === 'closing' && this.closeTimer === undefined) this.closeTimer = setTimeout(this.abandon, timeoutMs);
    return this.closing;
  }

  private open(): BufferDestination {
    const out = new sonicBoom.SonicBoom({
      fd: this.fd,
      sync: false,
      contentMode: 'buffer',
      maxLength: this.maxBytes,
      // EAGAIN (a full non-blocking pipe) is retried every 100 ms, until shutdown stops waiting.
      retryEAGAIN: this.retryEAGAIN,
    }) as unknown as BufferDestination;
    out.on('write', this.onWritten);
    out.on('drop', this.onDropped);
    out.on('error', this.onError);
    out.on('close', this.finish);
    return out;
  }

  private readonly retryEAGAIN = (): boolean => this.state !== 'abandoned';

  private readonly onWritten = (bytes: number): void => {
    if (this.state === 'closed') return;
    this.waitingBytes -= bytes;
    let left = bytes;
    while (left > 0 && this.waiting.length > 0) {
      const rest = this.waiting[0]!.length - this.firstWritten;
      if (left < rest) {
        this.firstWritten += left;
        return;
      }
      left -= rest;
      this.waiting.shift();
      this.firstWritten = 0;
    }
  };

  private readonly onDropped = (batch: Buffer): void => {
    this.dropped = true;
    this.onLoss(countLines(batch, 0), 'full');
  };

  /**
   * SonicBoom stops after an error other than EAGAIN, keeping what it could not write for the
   * next accepted write — which never comes once it holds the cap. So what was waiting is lost:
   * an open destination starts over with a fresh SonicBoom on the same descriptor; a closing
   * one is closed.
   */
  private readonly onError = (error: NodeJS.ErrnoException): void => {
    if (this.state === 'closed') return;
    this.onLoss(this.takeWaiting(), this.state === 'abandoned' ? 'timeout' : (error.code ?? 'error'));
    if (this.state === 'open') {
      this.out.removeAllListeners();
      this.out.on('error', ignore); // it is idle after an error; nothing more is expected from it
      this.out = this.open();
      return;
    }
    this.out.destroy(); // idle too: no write in flight, so the descriptor can be closed
    this.finish();
  };

  /** Stops the retries of a destination that takes nothing; the next EAGAIN ends it (onError). */
  private readonly abandon = (): void => {
    this.state = 'abandoned';
    // A write that never returns (a stalled disk) sends no error: stop waiting for it.
    this.closeTimer = setTimeout(this.giveUp, ABANDON_WAIT_MS);
  };

  private readonly giveUp = (): void => {
    if (this.state === 'closed') return;
    this.onLoss(this.takeWaiting(), 'timeout');
    this.finish();
  };

  private readonly finish = (): void => {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.closeTimer);
    this.resolveClosing?.();
  };

  /** Records (lines) accepted and not written; forgets them. */
  private takeWaiting(): number {
    let records = 0;
    for (let i = 0; i < this.waiting.length; i++) records += countLines(this.waiting[i]!, i === 0 ? this.firstWritten : 0);
    this.waiting.length = 0;
    this.firstWritten = 0;
    this.waitingBytes = 0;
    return records;
  }
}

/** How long after giving up on retries close() still waits for SonicBoom to report the end. */
const ABANDON_WAIT_MS = 1000;

/** Newlines in `bytes` from `start`: one per record. */
export function countLines(bytes: Buffer, start: number): number {
  let count = 0;
  for (let at = bytes.indexOf(10, start); at !== -1; at = bytes.indexOf(10, at + 1)) count++;
  return count;
}

const ignore = (): void => {};

/** A SonicBoom in buffer mode (its typings know only strings). */
interface BufferDestination {
  write(chunk: Buffer): boolean;
  end(): void;
  destroy(): void;
  on(event: 'write', listener: (bytes: number) => void): this;
  on(event: 'drop', listener: (batch: Buffer) => void): this;
  on(event: 'error', listener: (error: NodeJS.ErrnoException) => void): this;
  on(event: 'close', listener: () => void): this;
  removeAllListeners(): this;
}
