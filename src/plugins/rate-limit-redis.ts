import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from '../core/logger.js';
import type { ProxyStats } from '../core/stats.js';
import { Throttle } from '../core/throttle.js';
import { ACQUIRE_LUA, RELEASE_LUA, RETIRE_LUA, SYNC_LUA, TAKE_LUA } from './rate-limit-redis-scripts.js';
import { MemoryRateLimitStore, type RateLimitStore } from './rate-limit-store.js';

/** What a failed or timed-out Redis call answers: let it through, refuse it (429), or ask a bucket in this process. */
export type RedisStoreOnError = 'allow' | 'deny' | 'local';

/** Options of the Redis store (`rate-limit`'s `store: { redis: … }`). */
export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  url: string;
  /** Prepended to every key, so several proxies or entries can share a Redis without sharing budgets (default `proxyline:`). */
  prefix?: string;
  /** Longest wait for one Redis call, in ms; past it the call counts as failed (default 50). */
  timeoutMs?: number;
  /** What a failed call answers (default `allow`). */
  onError?: RedisStoreOnError;
  /** How long a process's connection counts outlive its last renewal (a crash), in ms (default 15000). */
  connectionLeaseMs?: number;
}

/** What the store reports to. */
export interface RedisStoreServices {
  /** Warned when calls fail, at most once a minute. */
  logger: Logger;
  /** `rateLimitStoreErrors` counts every failed call. */
  stats: ProxyStats;
}

/** Defaults of {@link RedisStoreOptions}. */
export const REDIS_STORE_DEFAULTS = { prefix: 'proxyline:', timeoutMs: 50, onError: 'allow', connectionLeaseMs: 15_000 } as const;

/** The scripts, as ioredis's defineCommand adds them to the client. */
interface ScriptCommands {
  rlTake(key: string, cost: number, rate: number, burst: number, debt: string): Promise<string>;
  rlAcquire(counts: string, leases: string, max: number, owner: string, leaseMs: number): Promise<number>;
  rlRelease(counts: string, owner: string): Promise<number>;
  rlSync(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
  rlRetire(numberOfKeys: number, ...keysAndArgs: string[]): Promise<number>;
}
type Client = Redis & ScriptCommands;

/** Byte tokens taken from Redis ahead and spent by this process without asking. */
interface Lease {
  tokens: number;
  /** `now` when taken. */
  at: number;
}

/** A lease older than this is forfeit: its tokens were paid for, so dropping them never lets more through. */
const LEASE_LIFE_MS = 1000;
/** A byte lease is this share of a second's rate (at most the burst): about 10 round trips a second per process and key at full rate. */
const QUANTUM_SHARE = 0.1;
/** Counts written back per SYNC call, so one call never carries an unbounded number of keys. */
const SYNC_BATCH = 500;
/** Warnings about failed calls, at most one per interval. */
const WARN_INTERVAL_MS = 60_000;

/**
 * A {@link RateLimitStore} in Redis, shared by every process (and machine) pointed at it.
 *
 * - Buckets: one hash per key, updated by a Lua script of ours (TAKE_LUA) on Redis's clock: the
 *   memory store's token bucket, atomically, so N processes enforce one limit.
 * - Open connections: per key a hash of process id → count (INCR/DECR by script), and a sorted set
 *   of process leases renewed every third of `connectionLeaseMs`. A crashed process stops renewing;
 *   the next admission on a key drops the counts of processes whose lease ran out. This process's
 *   own counts are also kept here, and written back absolutely where a call failed or Redis
 *   restarted empty.
 * - Bytes: taken in leases of a tenth of a second's worth, spent here without a round trip.
 *
 * Every call is bounded by `timeoutMs` (no offline queue, no retries); a failure is answered by
 * `onError`, counted, and warned about at most once a minute. ioredis reconnects on its own and
 * the next call uses Redis again. ioredis is imported when the store is made, never otherwise.
 */
export class RedisRateLimitStore implements RateLimitStore {
  private client?: Client;
  /** Settles once ioredis is imported and the client made (or that failed): local work, not Redis's. */
  private readonly loading: Promise<void>;
  /** Set until the first connection attempt is over; calls made meanwhile wait for it, within `timeoutMs` once loaded. */
  private startup?: Promise<void>;
  private readonly prefix: string;
  private readonly leasesKey: string;
  private readonly timeoutMs: number;
  private readonly onError: RedisStoreOnError;
  private readonly leaseMs: number;
  /** Buckets of `onError: "local"` (and of bytes under `"deny"`). */
  private readonly local = new MemoryRateLimitStore();
  /** This process's open connections by key: what its field in each counts hash should say. */
  private readonly held = new Map<string, number>();
  /** Keys whose count in Redis may be wrong (a call failed, Redis restarted): written back absolutely. */
  private readonly dirty = new Set<string>();
  /** Acquires and releases on their way, by key: a key is written back only when none is. */
  private readonly pending = new Map<string, number>();
  private readonly leases = new Map<string, Lease>();
  private readonly warnings = new Throttle(WARN_INTERVAL_MS);
  /** This store's id in the counts and leases: unique per process and store. */
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private renewer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    options: RedisStoreOptions,
    private readonly services: RedisStoreServices,
  ) {
    this.prefix = options.prefix ?? REDIS_STORE_DEFAULTS.prefix;
    this.leasesKey = `${this.prefix}leases`;
    this.timeoutMs = options.timeoutMs ?? REDIS_STORE_DEFAULTS.timeoutMs;
    this.onError = options.onError ?? REDIS_STORE_DEFAULTS.onError;
    this.leaseMs = options.connectionLeaseMs ?? REDIS_STORE_DEFAULTS.connectionLeaseMs;
    this.loading = this.load(options.url);
    this.startup = this.loading
      .then(() => this.firstAttempt())
      .finally(() => {
        this.startup = undefined;
      });
  }

  /** Settles once the first connection attempt is over (ready or failed), for tests and start-up. */
  async ready(): Promise<void> {
    await this.startup;
  }

  take(key: string, cost: number, ratePerSecond: number, burst: number, now: number, debt = false): number | Promise<number> {
    if (debt) return this.takeBytes(key, cost, ratePerSecond, burst, now);
    return this.call(
      async (client) => Number(await client.rlTake(this.prefix + key, cost, ratePerSecond, burst, '0')),
      () => (this.onError === 'allow' ? 0 : this.onError === 'deny' ? 1000 : this.local.take(key, cost, ratePerSecond, burst, performance.now())),
    );
  }

  acquire(key: string, max: number): Promise<boolean> {
    this.begin(key);
    return this.call(
      async (client) => {
        const answer = await client.rlAcquire(this.countsKey(key), this.leasesKey, max, this.owner, this.leaseMs);
        if (answer >= 2) this.lapsed();
        return answer % 2 === 1;
      },
      () => {
        // The script may have counted it after all (a timeout): Redis's count is written again later.
        this.dirty.add(key);
        return this.onError === 'allow' || (this.onError === 'local' && (this.held.get(key) ?? 0) < max);
      },
    ).then((counted) => {
      this.end(key);
      if (counted) this.held.set(key, (this.held.get(key) ?? 0) + 1);
      return counted;
    });
  }

  release(key: string): void {
    const count = (this.held.get(key) ?? 0) - 1;
    if (count > 0) this.held.set(key, count);
    else this.held.delete(key);
    this.begin(key);
    void this.call(
      (client) => client.rlRelease(this.countsKey(key), this.owner),
      () => {
        this.dirty.add(key);
        return 0;
      },
    ).then(() => this.end(key));
  }

  get connections(): ReadonlyMap<string, number> {
    return this.held;
  }

  /** Gives this process's counts back at once (not left to the lease), then disconnects; bounded by `timeoutMs` (and, during the first connection attempt, by its connect timeout). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewer);
    this.local.close();
    await this.startup;
    const client = this.client;
    if (!client) return;
    if (client.status === 'ready') {
      const keys = [...new Set([...this.held.keys(), ...this.dirty])].map((key) => this.countsKey(key));
      await client.rlRetire(1 + keys.length, this.leasesKey, ...keys, this.owner).catch(ignore);
    }
    client.disconnect();
  }

  /** Loads ioredis and makes the client, which starts connecting. */
  private async load(url: string): Promise<void> {
    let client: Client;
    try {
      const { Redis } = await import('ioredis');
      if (this.closed) return;
      client = new Redis(url, {
        // A call never waits for a connection: it fails at once when there is none, or after
        // timeoutMs without an answer; the store's onError answers then.
        enableOfflineQueue: false,
        commandTimeout: this.timeoutMs,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        connectTimeout: Math.max(1000, this.timeoutMs),
        retryStrategy: (times) => Math.min(times * 200, 2000),
        scripts: {
          rlTake: { lua: TAKE_LUA, numberOfKeys: 1 },
          rlAcquire: { lua: ACQUIRE_LUA, numberOfKeys: 2 },
          rlRelease: { lua: RELEASE_LUA, numberOfKeys: 1 },
          rlSync: { lua: SYNC_LUA },
          rlRetire: { lua: RETIRE_LUA },
        },
      }) as Client;
    } catch (error) {
      this.failed(error);
      return;
    }
    this.client = client;
    // Failures are counted per call; the connection's own errors would only repeat them.
    client.on('error', ignore);
    // Redis may have restarted empty: this process's counts are written again.
    client.on('ready', () => {
      this.lapsed();
    });
    this.renewer = setInterval(renew, Math.max(100, this.leaseMs / 3), this).unref();
  }

  /** Settles when the client's first connection attempt is over: ready, or failed. */
  private firstAttempt(): Promise<void> {
    const client = this.client;
    if (!client || client.status === 'ready') return Promise.resolve();
    return new Promise<void>((resolve) => {
      const settle = () => {
        client.off('ready', settle);
        client.off('error', settle);
        client.off('end', settle);
        resolve();
      };
      client.on('ready', settle);
      client.on('error', settle);
      client.on('end', settle);
    });
  }

  /**
   * Runs `run` on the client, or answers `fallback()` when it fails (counted, warned about);
   * during the first connection attempt, waits for it within `timeoutMs` (after ioredis is
   * loaded: a local cost, once). Never rejects.
   */
  private call<T>(run: (client: Client) => Promise<T>, fallback: () => T): Promise<T> {
    const attempt = this.startup
      ? this.loading.then(() => within(this.startup ?? Promise.resolve(), this.timeoutMs)).then(() => run(this.connected()))
      : this.client
        ? run(this.client)
        : Promise.reject(new Error('ioredis could not be loaded'));
    return attempt.catch((error: unknown) => {
      // Calls still on their way when the server closes are no news.
      if (!this.closed) this.failed(error);
      return fallback();
    });
  }

  private connected(): Client {
    if (!this.client) throw new Error('ioredis could not be loaded');
    return this.client;
  }

  /** Counts a failed call; warns at most once a minute, saying how many were held back. */
  private failed(error: unknown): void {
    this.services.stats.rateLimitStoreErrors++;
    const held = this.warnings.take();
    if (held === undefined) return;
    this.services.logger.warn(`rate-limit: Redis store call failed; onError "${this.onError}" answers until Redis answers again`, {
      message: error instanceof Error ? error.message : String(error),
      prefix: this.prefix,
      failedSinceLastWarning: held,
    });
  }

  /**
   * Bytes: spent from this process's lease while it lasts (no round trip); else charged to Redis
   * with debt, together with the next lease, which is granted at once so the connections of this
   * process with this key spend it while the answer is on its way.
   */
  private takeBytes(key: string, cost: number, rate: number, burst: number, now: number): number | Promise<number> {
    const lease = this.leases.get(key);
    const left = lease && now - lease.at < LEASE_LIFE_MS ? lease.tokens : 0;
    if (left >= cost) {
      lease!.tokens -= cost;
      return 0;
    }
    const quantum = Math.min(burst, rate * QUANTUM_SHARE);
    if (lease) {
      lease.tokens = quantum;
      lease.at = now;
    } else this.leases.set(key, { tokens: quantum, at: now });
    return this.call(
      async (client) => Number(await client.rlTake(this.prefix + key, cost - left + quantum, rate, burst, '1')),
      () => {
        this.leases.delete(key);
        return this.onError === 'allow' ? 0 : this.local.take(key, cost, rate, burst, performance.now(), true);
      },
    );
  }

  private countsKey(key: string): string {
    return `${this.prefix}${key}:connections-open`;
  }

  private begin(key: string): void {
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
  }

  private end(key: string): void {
    const count = (this.pending.get(key) ?? 0) - 1;
    if (count > 0) this.pending.set(key, count);
    else this.pending.delete(key);
  }

  /** This process's lease had run out, or Redis restarted: every count of it is written again. */
  private lapsed(): void {
    for (const key of this.held.keys()) this.dirty.add(key);
    this.renew();
  }

  /**
   * Renews the lease, extends the life of the counts this process holds, and writes back the
   * dirty ones that no call is changing now; forfeit byte leases are dropped.
   * @internal
   */
  renew(): void {
    const now = performance.now();
    for (const [key, lease] of this.leases) if (now - lease.at >= LEASE_LIFE_MS) this.leases.delete(key);
    const client = this.client;
    // A process counting no connection needs no lease: its next admission takes one.
    if (this.closed || client?.status !== 'ready' || (this.held.size === 0 && this.dirty.size === 0)) return;
    const keys = [...new Set([...this.held.keys(), ...this.dirty])];
    for (let start = 0; start === 0 || start < keys.length; start += SYNC_BATCH) {
      const batch = keys.slice(start, start + SYNC_BATCH);
      const counts = batch.map((key) => {
        if (!this.dirty.has(key) || this.pending.has(key)) return '-';
        this.dirty.delete(key);
        return String(this.held.get(key) ?? 0);
      });
      client.rlSync(1 + batch.length, this.leasesKey, ...batch.map((key) => this.countsKey(key)), this.owner, this.leaseMs, ...counts).then(
        (renewed) => {
          // The lease had run out (a stall longer than a lease): others may have dropped these counts.
          if (renewed === 1 && start === 0 && this.held.size > 0 && !this.closed) this.lapsed();
        },
        (error: unknown) => {
          this.failed(error);
          batch.forEach((key, index) => counts[index] !== '-' && this.dirty.add(key));
        },
      );
    }
  }
}

function renew(store: RedisRateLimitStore): void {
  store.renew();
}

function ignore(): void {}

/** `promise`, or a rejection after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connection to Redis within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
