import { identity, type MonoTypeOperatorFunction, type Subscriber } from 'rxjs';
import { inject, injectable, type InjectionToken } from 'tsyringe';
import { stateKey, type ConnectionContext, type StateKey } from '../core/context.js';
import { ProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import type { FlowControl } from '../core/flow-control.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';

/** Options of `rate-limit`. Each limit is off when absent. */
export interface RateLimitOptions {
  /** Whose budget a connection, request or byte draws on: its client IP, its user, or one for all. */
  scope: 'ip' | 'user' | 'global';
  /** New connections per second. */
  connectionsPerSecond?: number;
  /** Requests (heads, CONNECT included) per second. */
  requestsPerSecond?: number;
  /** Body and tunnel bytes per second, in each direction. */
  bytesPerSecond?: number;
  /**
   * Client connections open at once per scope key, counted at a connection's first request (for
   * `user`, that is when the user is known). One more gets 429 for that request and is closed.
   */
  maxConnections?: number;
  /** Bucket size of every limit (default: one second's worth of its rate). */
  burst?: number;
}

/**
 * Token buckets by key. `take` answers 0 when `cost` tokens were taken, or how many ms until they
 * would be there (nothing is taken then). With `debt`, the cost is always taken, the balance may go
 * negative, and the answer is how many ms until it is back to zero (0 when it is not negative).
 * A bucket starts full (`burst` tokens) and refills at `ratePerSecond`, up to `burst`.
 */
export interface RateLimitStore {
  take(key: string, cost: number, ratePerSecond: number, burst: number, now: number, debt?: boolean): number;
  /** Frees what the store holds (timers); called when the server closes. */
  close?(): void;
}

/**
 * Token for the {@link RateLimitStore} service. The plugin does not resolve it yet: each
 * `rate-limit` entry owns a {@link MemoryRateLimitStore} shared by all connections of its proxy.
 * A store shared between processes (Redis, …) is a future option.
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
 * Buckets in a Map. Memory stays bounded by the keys active recently: a sweep every
 * {@link SWEEP_INTERVAL_MS} (an unref'd timer, running only while there are buckets) drops the
 * buckets that have refilled completely, since a new bucket starts full anyway.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly buckets = new Map<string, Bucket>();
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

/** The reason held on a flow control while a direction is over its byte budget. */
const REASON = 'rate-limit';

/**
 * Token-bucket limits on new connections, requests, and bytes each way, and a cap on open
 * connections, per client IP, per authenticated user (`exchange.user`, set by `proxy-auth`
 * earlier in the chain; the IP when there is none) or global. A connection or request over its
 * limit is refused with 429 and a `Retry-After`. Bytes are never dropped or buffered: each chunk
 * goes on at once and is charged, and while the budget is in debt the direction's source is held
 * paused (reason `rate-limit`).
 * Place it after the routing plugins (`http-forward`, `connect-handler`).
 */
@injectable()
export class RateLimitPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'rate-limit',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        scope: {
          enum: ['ip', 'user', 'global'],
          default: 'ip',
          description: 'Budget per client IP, per authenticated user (the IP when none), or one for all clients.',
        },
        connectionsPerSecond: { type: 'number', exclusiveMinimum: 0, description: 'New connections per second (off when absent).' },
        requestsPerSecond: { type: 'number', exclusiveMinimum: 0, description: 'Requests per second (off when absent).' },
        bytesPerSecond: { type: 'number', exclusiveMinimum: 0, description: 'Body/tunnel bytes per second, each direction (off when absent).' },
        maxConnections: {
          type: 'integer',
          minimum: 1,
          description: 'Client connections open at once per scope key, counted at their first request; one more gets 429 and is closed (off when absent).',
        },
        burst: { type: 'number', exclusiveMinimum: 0, description: 'Bucket size of every limit (default: one second of its rate).' },
      },
    },
    after: ['head-parser'],
    before: ['upstream-dialer'],
  };
  readonly name = RateLimitPlugin.manifest.name;
  /** The buckets, shared by every connection of this proxy. @internal */
  readonly store: RateLimitStore = new MemoryRateLimitStore();
  /** Open connections per scope key (`maxConnections`); a key leaves when its count drops to zero. */
  private readonly open = new Map<string, number>();
  /** The key a connection was counted under, on its context until `onClose` takes it back (one key per entry in the chain). */
  private readonly countedUnder: StateKey<string | undefined> = stateKey('rate-limit.counted-under');

  constructor(
    /** The validated options; its stages read them per connection. */
    @inject(PluginOptions) readonly options: RateLimitOptions,
  ) {}

  dispose(): void {
    this.store.close?.();
    this.open.clear();
  }

  /** Connections counted now, by scope key (for tests and diagnostics). */
  get openConnections(): ReadonlyMap<string, number> {
    return this.open;
  }

  /**
   * Counts the connection under its first request's scope key: undefined when within
   * `maxConnections`, else the 429 to answer (the connection is then not counted). @internal
   */
  admitConnection(ctx: ConnectionContext, exchange: Exchange): ProxyError | undefined {
    const max = this.options.maxConnections!;
    const key = this.scopeKey(ctx, exchange);
    const count = this.open.get(key) ?? 0;
    if (count >= max) return tooManyConnections(max, key);
    this.open.set(key, count + 1);
    ctx.set(this.countedUnder, key);
    return undefined;
  }

  /** Gives the connection's count back; the key is cleared from the context, so it is given back only once. */
  onClose(ctx: ConnectionContext): void {
    const key = ctx.get(this.countedUnder);
    if (key === undefined) return;
    ctx.set(this.countedUnder, undefined);
    const count = (this.open.get(key) ?? 0) - 1;
    if (count > 0) this.open.set(key, count);
    else this.open.delete(key);
  }

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    // Called when the connection is accepted: that is when it counts.
    let refusedFor = 0;
    const { connectionsPerSecond } = this.options;
    if (connectionsPerSecond !== undefined) {
      const key = `${this.scopeKey(ctx, undefined)}:connections`;
      refusedFor = this.store.take(key, 1, connectionsPerSecond, this.countBurst(connectionsPerSecond), performance.now());
    }
    return stage((downstream) => new InboundLimiter(downstream, ctx, this, refusedFor));
  }

  outbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    if (this.options.bytesPerSecond === undefined) return identity;
    return stage((downstream) => new ByteLimiter(downstream, ctx, this, ctx.outboundFlow, 'out'));
  }

  /** `ip:<address>`, `user:<name>` or `global`. @internal */
  scopeKey(ctx: ConnectionContext, exchange: Exchange | undefined): string {
    const { scope } = this.options;
    if (scope === 'global') return 'global';
    if (scope === 'user' && exchange?.user !== undefined) return `user:${exchange.user}`;
    const { address } = ctx.clientAddress;
    return `ip:${address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address}`;
  }

  /** Bucket size of a count limit: at least 1, or a rate below 1/s would never allow anything. */
  private countBurst(rate: number): number {
    return Math.max(1, this.options.burst ?? rate);
  }

  /** Takes a request token from the bucket `key`: undefined when allowed, else the 429 to answer. @internal */
  takeRequest(key: string): ProxyError | undefined {
    const rate = this.options.requestsPerSecond;
    if (rate === undefined) return undefined;
    const wait = this.store.take(key, 1, rate, this.countBurst(rate), performance.now());
    return wait > 0 ? rateLimited(wait) : undefined;
  }

  /** Charges bytes to the bucket `key`; returns the ms to hold the source (0: none). @internal */
  chargeBytes(key: string, bytes: number): number {
    const rate = this.options.bytesPerSecond!;
    const burst = this.options.burst ?? rate;
    return this.store.take(key, bytes, rate, burst, performance.now(), true);
  }
}

/**
 * The bucket keys of one connection's direction, built again only when the scope's subject
 * changes (the user, from one request to the next): a fresh key string per event would be
 * built and hashed once for every chunk.
 */
class BucketKeys {
  private user?: string;
  private scope?: string;
  private requestsKey = '';
  private bytesKey = '';

  constructor(
    private readonly plugin: RateLimitPlugin,
    private readonly ctx: ConnectionContext,
    private readonly direction: 'in' | 'out',
  ) {}

  /** `<scope>:requests`. */
  requests(exchange: Exchange | undefined): string {
    this.update(exchange);
    return this.requestsKey;
  }

  /** `<scope>:bytes:<direction>`. */
  bytes(exchange: Exchange | undefined): string {
    this.update(exchange);
    return this.bytesKey;
  }

  private update(exchange: Exchange | undefined): void {
    const user = exchange?.user;
    if (this.scope !== undefined && user === this.user) return;
    this.user = user;
    this.scope = this.plugin.scopeKey(this.ctx, exchange);
    this.requestsKey = `${this.scope}:requests`;
    this.bytesKey = `${this.scope}:bytes:${this.direction}`;
  }
}

function rateLimited(waitMs: number): ProxyError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new ProxyError('ERR_PROXY_RATE_LIMITED', 'rate limit exceeded', { headers: [['Retry-After', String(seconds)]] });
}

/** The 429 for a connection over `maxConnections`; when one will close is unknown, so Retry-After is 1 s. */
function tooManyConnections(max: number, key: string): ProxyError {
  const per = key === 'global' ? 'in all' : key.startsWith('user:') ? 'per user' : 'per client address';
  return new ProxyError('ERR_PROXY_TOO_MANY_CONNECTIONS', `too many open connections: at most ${max} ${per}`, { headers: [['Retry-After', '1']] });
}

/**
 * Charges the data of one direction to its byte budget; in debt, holds `flow` until the budget
 * is back to zero (one timer at a time, re-armed if more debt came meanwhile).
 */
class ByteLimiter extends Stage {
  private exchange?: Exchange;
  private timer?: NodeJS.Timeout;
  private resumeAt = 0;
  protected readonly keys: BucketKeys;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    protected readonly ctx: ConnectionContext,
    protected readonly plugin: RateLimitPlugin,
    private readonly flow: FlowControl,
    direction: 'in' | 'out',
  ) {
    super(downstream);
    this.keys = new BucketKeys(plugin, ctx, direction);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'data') this.charge(event.chunk.length);
    else if (event.kind !== 'message-end') this.exchange = event.exchange;
    this.emit(event);
  }

  protected override onFinalize(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flow.release(REASON);
  }

  private charge(bytes: number): void {
    const wait = this.plugin.chargeBytes(this.keys.bytes(this.exchange), bytes);
    if (wait <= 0) return;
    this.resumeAt = Math.max(this.resumeAt, performance.now() + wait);
    if (this.timer) return;
    this.flow.hold(REASON);
    this.timer = setTimeout(resume, Math.ceil(wait), this);
  }

  /** The timer fired: release, or wait on if more debt came since it was set. @internal */
  resume(): void {
    this.timer = undefined;
    if (this.closed) return;
    const left = this.resumeAt - performance.now();
    if (left > 0.5) this.timer = setTimeout(resume, Math.ceil(left), this);
    else this.flow.release(REASON);
  }
}

function resume(limiter: ByteLimiter): void {
  limiter.resume();
}

/** Inbound: refuses requests over the connection or request limits; charges request bytes. */
class InboundLimiter extends ByteLimiter {
  /**
   * Set once the connection is counted against maxConnections, at its first request that no
   * earlier plugin answered (a 407 before the retry with credentials keeps the connection open).
   */
  private counted = false;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    ctx: ConnectionContext,
    plugin: RateLimitPlugin,
    /** Non-zero when this connection was over the connection limit: ms until one would be allowed. */
    private readonly refusedFor: number,
  ) {
    super(downstream, ctx, plugin, ctx.inboundFlow, 'in');
  }

  protected override onEvent(event: ProxyEvent): void {
    if (event.kind === 'request-head' && !event.exchange.answeredLocally) this.check(event.exchange);
    if (event.kind === 'data' && this.plugin.options.bytesPerSecond === undefined) return this.emit(event);
    super.onEvent(event);
  }

  /**
   * Connection rate, then the connection cap (at the first request not answered in place; a
   * refused connection is not counted), then the request rate.
   */
  private check(exchange: Exchange): void {
    if (this.refusedFor > 0) {
      // A connection over the connection rate is refused as a whole.
      exchange.closeClient = true;
      return this.refuse(exchange, rateLimited(this.refusedFor));
    }
    if (!this.counted && this.plugin.options.maxConnections !== undefined) {
      const error = this.plugin.admitConnection(this.ctx, exchange);
      if (error) {
        exchange.closeClient = true;
        return this.refuse(exchange, error);
      }
      this.counted = true;
    }
    const error = this.plugin.takeRequest(this.keys.requests(exchange));
    if (error) this.refuse(exchange, error);
  }

  /** Answers `error` in this request's place, in the name of this plugin. */
  private refuse(exchange: Exchange, error: ProxyError): void {
    exchange.error = error;
    exchange.answeredBy = this.plugin.name;
  }
}
