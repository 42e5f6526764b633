/** How a worker that keeps dying is restarted: after a delay that doubles up to a cap. */
export interface BackoffOptions {
  /** The first delay, in ms. */
  readonly minMs: number;
  /** The longest delay, in ms. */
  readonly maxMs: number;
  /** A worker that stayed up this long before dying is restarted after `minMs` again. */
  readonly stableMs: number;
}

/** The primary's default: 100 ms doubling to 10 s, back to 100 ms after 30 s up. */
export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 100, maxMs: 10_000, stableMs: 30_000 };

/**
 * The restart delays of one worker slot: a crash loop (a bad config file read again at every
 * start, a bug hit at once) backs off instead of forking as fast as it can, and a worker that
 * dies once after a long life comes back at once.
 */
export class RestartBackoff {
  private nextMs: number;

  constructor(private readonly options: BackoffOptions = DEFAULT_BACKOFF) {
    this.nextMs = options.minMs;
  }

  /** The delay before restarting a worker that was up for `upMs`; each call doubles the next. */
  delay(upMs: number): number {
    if (upMs >= this.options.stableMs) this.nextMs = this.options.minMs;
    const delay = this.nextMs;
    this.nextMs = Math.min(this.nextMs * 2, this.options.maxMs);
    return delay;
  }
}
