import type { InjectionToken } from 'tsyringe';

/**
 * Token buckets and open-connection counts by key, for `rate-limit`. A store in process memory
 * answers at once; a store shared between processes (Redis) may answer with a promise. A promise
 * never rejects: the store decides what a failure means (its `onError`), so callers only wait.
 */
export interface RateLimitStore {
  /**
   * Answers 0 when `cost` tokens were taken, or how many ms until they would be there (nothing
   * is taken then). With `debt`, the cost is always taken, the balance may go negative, and the
   * answer is how many ms until it is back to zero (0 when it is not negative). A bucket starts
   * full (`burst` tokens) and refills at `ratePerSecond`, up to `burst`. `now` is
   * `performance.now()`; a shared store may read a clock of its own.
   */
  take(key: string, cost: number, ratePerSecond: number, burst: number, now: number, debt?: boolean): number | Promise<number>;
  /** Counts one more open connection under `key` if fewer than `max` are open: true when counted. */
  acquire(key: string, max: number): boolean | Promise<boolean>;
  /** Gives back one connection that `acquire` counted under `key`. */
  release(key: string): void;
  /** This process's open connections counted, by key (a key leaves when its count drops to zero). */
  readonly connections: ReadonlyMap<string, number>;
  /** Frees what the store holds (timers, a connection); called when the server closes. */
  close?(): void | Promise<void>;
}

/**
 * Token for the {@link RateLimitStore} service. The plugin does not resolve it: each `rate-limit`
 * entry makes the store its `store` option names, shared by all connections of its proxy.
 */
export const RateLimitStore: InjectionToken<RateLimitStore> = Symbol('RateLimitStore');

interface Bucket {
  tokens: number;
  /** `now` of the last update. */
  at: number;
  rate: number;
  burst: number;
}

/** How often full (stale) buckets are dropped, in ms. */
const SWEEP_INTERVAL_MS = 10_000;

/**
 * Buckets and counts in Maps, answering synchronously. Memory stays bounded by the keys active
 * recently: a sweep every {@link SWEEP_INTERVAL_MS} (an unref'd timer, running only while there
 * are buckets) drops the buckets that have refilled completely, since a new bucket starts full
 * anyway; a connection count leaves when it drops to zero.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly buckets = new Map<string, Bucket>();
  private readonly open = new Map<string, number>();
  private sweeper?: NodeJS.Timeout;

  take(key: string, cost: number, ratePerSecond: number, burst: number, now: number, debt = false): number {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { tokens: burst, at: now, rate: ratePerSecond, burst };
      this.buckets.set(key, bucket);
      this.sweeper ??= setInterval(sweep, SWEEP_INTERVAL_MS, this).unref();
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) * ratePerSecond) / 1000);
      bucket.at = now;
      bucket.rate = ratePerSecond;
      bucket.burst = burst;
    }
    if (debt) {
      bucket.tokens -= cost;
      return bucket.tokens >= 0 ? 0 : (-bucket.tokens * 1000) / ratePerSecond;
    }
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return 0;
    }
    return ((cost - bucket.tokens) * 1000) / ratePerSecond;
  }

  acquire(key: string, max: number): boolean {
    const count = this.open.get(key) ?? 0;
    if (count >= max) return false;
    this.open.set(key, count + 1);
    return true;
  }

  release(key: string): void {
    const count = (this.open.get(key) ?? 0) - 1;
    if (count > 0) this.open.set(key, count);
    else this.open.delete(key);
  }

  get connections(): ReadonlyMap<string, number> {
    return this.open;
  }

  /** Buckets kept now (for tests and diagnostics). */
  get size(): number {
    return this.buckets.size;
  }

  /** Drops every bucket that is full at `now`; stops the sweep timer when none is left. */
  sweep(now = performance.now()): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) * bucket.rate) / 1000 >= bucket.burst) this.buckets.delete(key);
    }
    if (this.buckets.size === 0) this.stopSweeper();
  }

  close(): void {
    this.buckets.clear();
    this.open.clear();
    this.stopSweeper();
  }

  private stopSweeper(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

function sweep(store: MemoryRateLimitStore): void {
  store.sweep();
}
