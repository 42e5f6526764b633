import { close, fstat, fstatSync, open, openSync, rename, unlink } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../core/logger.js';
import { Throttle } from '../core/throttle.js';
import { OPEN_FLAGS, type BatchDestination } from './batched-log.js';
import { countLines, LogDestination, type LossListener } from './log-destination.js';

/** How large the files of a {@link RotatingFile} grow, how many are kept, and how much may wait in memory. */
export interface RotationLimits {
  /** A file is rotated before a line would take it past this size (a longer line gets a file of its own). */
  readonly maxFileBytes: number;
  /** Files kept in all: the current one and `maxFiles - 1` rotated ones. */
  readonly maxFiles: number;
  /** Bytes of lines that may wait, for the file or for a rotation to end; past it, batches are dropped. */
  readonly maxBufferBytes: number;
}

/** The name of rotated file `index` of `file`: `capture.jsonl` → `capture.1.jsonl`; a name without an extension gets `.1`. */
export function rotatedPath(file: string, index: number): string {
  const { dir, name, ext } = path.parse(file);
  return path.join(dir, ext ? `${name}.${index}${ext}` : `${name}.${index}`);
}

const openFile = promisify(open);
const statFile = promisify(fstat);
const renameFile = promisify(rename);
const unlinkFile = promisify(unlink);

/**
 * A log file that is rotated by size: before a line would take it past `maxFileBytes`, it is
 * written out and closed, `name.N.ext` become `name.N+1.ext` (the oldest, `maxFiles - 1`, is
 * replaced, so at most `maxFiles` files remain), it becomes `name.1.ext`, and a fresh file is
 * opened — all asynchronously, so the event loop never waits on the disk. Batches are split at
 * line boundaries, so every line lands whole in exactly one file, in order. While a rotation runs,
 * batches wait in memory: what waits there and in the file's writer stays under `maxBufferBytes`;
 * past it, batches are dropped and reported to `onLoss`, like a {@link LogDestination}'s.
 */
export class RotatingFile implements BatchDestination {
  /** The file being written; undefined while a rotation replaces it, or when it could not be opened. */
  private out?: LogDestination;
  /** The file a rotation is writing out and closing. */
  private retiring?: LogDestination;
  /** Bytes in the current file: its size when opened plus the batches it accepted. */
  private fileBytes: number;
  /** Batches that arrived during a rotation, in order. */
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  /** The rotation (or reopening) under way; it never rejects. */
  private rotation?: Promise<void>;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closing?: Promise<void>;
  /** After a failed open: the error's code, and when a write may try again. */
  private openError = '';
  private retryAt = 0;
  /** One warning a minute about failed renames and opens. */
  private readonly warnings = new Throttle(60_000);

  constructor(
    /** Absolute path of the current file. */
    private readonly file: string,
    private readonly limits: RotationLimits,
    private readonly onLoss: LossListener,
    private readonly logger: Logger,
    /** The plugin's name, first word of the warnings. */
    private readonly name: string,
  ) {
    // Opened here, synchronously (start-up): a file that cannot be opened stops it.
    const fd = openSync(file, OPEN_FLAGS);
    try {
      this.fileBytes = fstatSync(fd).size;
    } catch (error) {
      close(fd, ignore);
      throw error;
    }
    this.out = new LogDestination(fd, limits.maxBufferBytes, onLoss);
  }

  /** Queues `batch` (whole lines) for the current file, rotating first where it would grow too large. */
  write(batch: Buffer): void {
    if (this.state !== 'open') return this.onLoss(countLines(batch, 0), 'closed');
    if (!this.out && !this.rotation) {
      // The file could not be opened last time: try again, at most once a second.
      if (performance.now() < this.retryAt) return this.onLoss(countLines(batch, 0), this.openError);
      this.rotation = this.replace(false);
    }
    this.take(batch);
  }

  /**
   * Writes out what waits, then closes the file; resolves when done or after about `timeoutMs`
   * (what is unwritten then is reported lost as `timeout`). A rotation under way is let finish
   * first, within the same bound. Never rejects.
   */
  close(timeoutMs: number): Promise<void> {
    return (this.closing ??= this.shutDown(timeoutMs));
  }

  private async shutDown(timeoutMs: number): Promise<void> {
    this.state = 'closing';
    const deadline = performance.now() + timeoutMs;
    while (this.rotation) {
      const left = Math.max(0, deadline - performance.now());
      void this.retiring?.close(left); // bounds the old file's write-out too (a full pipe)
      if (!(await settles(this.rotation, left + ROTATION_GRACE_MS))) {
        this.state = 'closed';
        return this.onLoss(this.dropHeld(), 'timeout');
      }
    }
    this.state = 'closed';
    await this.out?.close(Math.max(0, deadline - performance.now()));
  }

  /** Places a batch, or keeps it while a rotation runs. */
  private take(batch: Buffer): void {
    if (this.rotation || !this.out) this.hold(batch);
    else this.place(batch);
  }

  /** Writes the lines of `batch` that fit in the current file; the rest waits for the next one. */
  private place(batch: Buffer): void {
    const room = this.limits.maxFileBytes - this.fileBytes;
    if (batch.length <= room) return this.accept(batch);
    let cut = room > 0 ? batch.lastIndexOf(NEWLINE, room - 1) + 1 : 0;
    // A line longer than a whole file goes alone into a fresh one.
    if (cut === 0 && this.fileBytes === 0) cut = batch.indexOf(NEWLINE) + 1 || batch.length;
    if (cut > 0) this.accept(batch.subarray(0, cut));
    if (cut === batch.length) return;
    this.rotation = this.replace(true);
    this.hold(batch.subarray(cut));
  }

  private accept(bytes: Buffer): void {
    if (this.out!.write(bytes)) this.fileBytes += bytes.length;
  }

  /** Keeps `bytes` until the next file is open, unless that would take memory past the cap. */
  private hold(bytes: Buffer): void {
    const waiting = this.heldBytes + (this.retiring?.pendingBytes ?? 0) + (this.out?.pendingBytes ?? 0);
    if (waiting + bytes.length > this.limits.maxBufferBytes) return this.onLoss(countLines(bytes, 0), 'full');
    this.held.push(bytes);
    this.heldBytes += bytes.length;
  }

  /** Records held and not written; forgets them. */
  private dropHeld(): number {
    let records = 0;
    for (const bytes of this.held) records += countLines(bytes, 0);
    this.held.length = 0;
    this.heldBytes = 0;
    return records;
  }

  /**
   * Waits until the current file is written out and closed, shifts the names (`rotate`), opens
   * a fresh file and places what waited meanwhile. A rename that fails leaves the names as they
   * are (the file then grows for another `maxFileBytes` before the next try); an open that fails
   * drops what waited, and later batches until a write a second later opens it.
   */
  private async replace(rotate: boolean): Promise<void> {
    const old = this.out;
    this.out = undefined;
    if (old) {
      this.retiring = old;
      await old.close();
      this.retiring = undefined;
    }
    let rotated = !rotate;
    if (rotate) {
      try {
        await this.shift();
        rotated = true;
      } catch (error) {
        this.warn(`rotating ${this.file} failed; appending to it still`, error);
      }
    }
    let fd: number | undefined;
    let size = 0;
    let failure: unknown;
    try {
      fd = await openFile(this.file, OPEN_FLAGS);
      size = (await statFile(fd)).size;
    } catch (error) {
      failure = error;
    }
    this.rotation = undefined;
    if (failure !== undefined || this.state === 'closed') {
      if (fd !== undefined) close(fd, ignore);
      if (this.state === 'closed') return; // shutdown stopped waiting: what waited is counted already
      this.openError = (failure as NodeJS.ErrnoException).code ?? 'error';
      this.retryAt = performance.now() + REOPEN_DELAY_MS;
      this.warn(`cannot open ${this.file}; records are dropped until it opens again`, failure);
      return this.onLoss(this.dropHeld(), this.openError);
    }
    this.out = new LogDestination(fd!, this.limits.maxBufferBytes, this.onLoss);
    this.fileBytes = rotated ? size : 0; // after a failed rename, the next try is a whole file away
    const held = this.held.splice(0);
    this.heldBytes = 0;
    for (const batch of held) this.take(batch);
  }

  /** `name.N-1.ext` → `name.N.ext` down to the current file → `name.1.ext`; with `maxFiles` 1 the current file is deleted. */
  private async shift(): Promise<void> {
    const { file } = this;
    const { maxFiles } = this.limits;
    if (maxFiles === 1) return ignoreMissing(unlinkFile(file));
    for (let index = maxFiles - 1; index >= 2; index--) await ignoreMissing(renameFile(rotatedPath(file, index - 1), rotatedPath(file, index)));
    await ignoreMissing(renameFile(file, rotatedPath(file, 1)));
  }

  private warn(message: string, error: unknown): void {
    if (this.warnings.take() === undefined) return;
    this.logger.warn(`${this.name}: ${message}`, { path: this.file, message: String(error) });
  }
}

const NEWLINE = 10;

/** How long a write waits, after a failed open, before the file is tried again. */
const REOPEN_DELAY_MS = 1000;

/** How much longer than its own bound close() waits for a rotation (whose old file's writer gives up a second after its timeout). */
const ROTATION_GRACE_MS = 1500;

/** A rename or unlink whose file is not there (never rotated that far yet) is not a failure. */
async function ignoreMissing(operation: Promise<void>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** True once `promise` settles, false if `ms` pass first. */
function settles(promise: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void promise.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

const ignore = (): void => {};
