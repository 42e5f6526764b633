import { identity, type MonoTypeOperatorFunction, type Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { stateKey, type ConnectionContext, type StateKey } from '../core/context.js';
import { ProxyError } from '../core/errors.js';
import type { ProxyEvent, RequestHeadEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import type { FlowControl } from '../core/flow-control.js';
import { Logger, SilentLogger } from '../core/logger.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { GateStage, Stage, stage } from '../core/stage.js';
import { createStats, ProxyStats } from '../core/stats.js';
import { RedisRateLimitStore, type RedisStoreOptions } from './rate-limit-redis.js';
import { MemoryRateLimitStore, RateLimitStore } from './rate-limit-store.js';

export { MemoryRateLimitStore, RateLimitStore, RedisRateLimitStore };

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
  /** Where the buckets and counts live: this process (`memory`, the default) or a Redis shared by every process using it. */
  store?:
    | 'memory'
    | {
        /** The Redis holding every bucket and count, and how to use it. */
        redis: RedisStoreOptions;
      };
}

/** The reason held on a flow control while a direction is over its byte budget (or waits for the store's answer). */
const REASON = 'rate-limit';

/**
 * Token-bucket limits on new connections, requests, and bytes each way, and a cap on open
 * connections, per client IP, per authenticated user (`exchange.user`, set by `proxy-auth`
 * earlier in the chain; the IP when there is none) or global. A connection or request over its
 * limit is refused with 429 and a `Retry-After`. Bytes are never dropped or buffered: each chunk
 * goes on at once and is charged, and while the budget is in debt the direction's source is held
 * paused (reason `rate-limit`). The buckets and counts live in this process, or in Redis
 * (`store`), shared by every process and machine using it; a request then waits for Redis
 * (at most `timeoutMs`) with its client held (reason `gate`).
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
        store: {
          default: 'memory',
          description:
            'Where buckets and connection counts live: "memory" (this process) or { "redis": { … } }, shared by every process and machine using that Redis.',
          anyOf: [
            { const: 'memory', description: 'In this process: each process (worker) has budgets of its own.' },
            {
              type: 'object',
              additionalProperties: false,
              required: ['redis'],
              properties: {
                redis: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['url'],
                  description: 'A standalone Redis (not Cluster) holding the buckets and counts.',
                  properties: {
                    url: { type: 'string', pattern: '^rediss?://', description: 'redis://[user:password@]host:port[/db], or rediss:// for TLS.' },
                    prefix: {
                      type: 'string',
                      description:
                        'Prepended to every key (default "proxyline:"); give two entries with the same scope different prefixes, or they share budgets.',
                    },
                    timeoutMs: {
                      type: 'integer',
                      minimum: 1,
                      maximum: 60000,
                      description: 'Longest wait for one Redis call, in ms (default 50); past it the call fails and onError answers.',
                    },
                    onError: {
                      enum: ['allow', 'deny', 'local'],
                      description:
                        'When Redis fails or is too slow: "allow" lets the request through (default), "deny" answers 429, "local" uses a bucket in this process.',
                    },
                    connectionLeaseMs: {
                      type: 'integer',
                      minimum: 100,
                      description: "How long a crashed process's open-connection counts are still counted, in ms (default 15000).",
                    },
                  },
                },
              },
            },
          ],
        },
      },
    },
    after: ['head-parser'],
    before: ['upstream-dialer'],
  };
  readonly name = RateLimitPlugin.manifest.name;
  /** The buckets and connection counts, shared by every connection of this proxy (and, in Redis, beyond). @internal */
  readonly store: RateLimitStore;
  /** The key a connection was counted under, on its context until `onClose` takes it back (one key per entry in the chain). */
  private readonly countedUnder: StateKey<string | undefined> = stateKey('rate-limit.counted-under');

  constructor(
    /** The validated options; its stages read them per connection. */
    @inject(PluginOptions) readonly options: RateLimitOptions,
    @inject(Logger) logger: Logger = new SilentLogger(),
    @inject(ProxyStats) stats: ProxyStats = createStats(),
  ) {
    const { store } = options;
    this.store = typeof store === 'object' ? new RedisRateLimitStore(store.redis, { logger, stats }) : new MemoryRateLimitStore();
  }

  dispose(): void | Promise<void> {
    return this.store.close?.();
  }

  /** Connections of this process counted now, by scope key (for tests and diagnostics). */
  get openConnections(): ReadonlyMap<string, number> {
    return this.store.connections;
  }

  /** Remembers that the connection is counted under `key`, for `onClose` to give back. @internal */
  counted(ctx: ConnectionContext, key: string): void {
    ctx.set(this.countedUnder, key);
  }

  /** Gives the connection's count back; the key is cleared from the context, so it is given back only once. */
  onClose(ctx: ConnectionContext): void {
    const key = ctx.get(this.countedUnder);
    if (key === undefined) return;
    ctx.set(this.countedUnder, undefined);
    this.store.release(key);
  }

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    // Called when the connection is accepted: that is when it counts.
    let refusedFor: number | Promise<number> = 0;
    const { connectionsPerSecond } = this.options;
    if (connectionsPerSecond !== undefined) {
      const key = `${this.scopeKey(ctx, undefined)}:connections`;
      refusedFor = this.store.take(key, 1, connectionsPerSecond, this.countBurst(connectionsPerSecond), performance.now());
    }
    return stage((downstream) => new InboundLimiter(downstream, ctx, this, refusedFor));
  }

  outbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    if (this.options.bytesPerSecond === undefined) return identity;
    return stage((downstream) => new ByteLimiter(downstream, ctx, this));
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

  /** Takes a request token from the bucket `key` (`requestsPerSecond` is set): 0, or the ms until one is there. @internal */
  takeRequest(key: string): number | Promise<number> {
    const rate = this.options.requestsPerSecond!;
    return this.store.take(key, 1, rate, this.countBurst(rate), performance.now());
  }

  /** Charges bytes to the bucket `key`; returns the ms to hold the source (0: none). @internal */
  chargeBytes(key: string, bytes: number): number | Promise<number> {
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
 * The byte budget of one direction of one connection. Each chunk is charged as it passes; in
 * debt, `flow` is held until the budget is back to zero (one timer at a time, re-armed if more
 * debt came meanwhile). A store that answers later (Redis) holds `flow` until it has answered:
 * the chunks that still come meanwhile (already read) are added up and charged with the answer,
 * so nothing waits in memory but a number.
 */
class ByteMeter {
  private timer?: NodeJS.Timeout;
  private resumeAt = 0;
  /** A charge waits for the store's answer (the flow is held). */
  private waiting = false;
  /** Bytes that passed while waiting, and their bucket. */
  private owed = 0;
  private owedKey = '';
  private stopped = false;

  constructor(
    private readonly plugin: RateLimitPlugin,
    private readonly flow: FlowControl,
  ) {}

  charge(key: string, bytes: number): void {
    if (this.waiting) {
      this.owed += bytes;
      this.owedKey = key;
      return;
    }
    const wait = this.plugin.chargeBytes(key, bytes);
    if (typeof wait === 'number') {
      if (wait > 0) this.holdFor(wait);
      return;
    }
    this.waiting = true;
    this.flow.hold(REASON);
    void wait.then((ms) => this.answered(ms));
  }

  /** The store answered a charge: hold for its debt, charge what passed meanwhile, or let go. */
  private answered(wait: number): void {
    this.waiting = false;
    if (this.stopped) return;
    if (wait > 0) this.holdFor(wait);
    if (this.owed > 0) {
      const bytes = this.owed;
      this.owed = 0;
      this.charge(this.owedKey, bytes);
    }
    if (!this.waiting && !this.timer) this.flow.release(REASON);
  }

  private holdFor(wait: number): void {
    this.resumeAt = Math.max(this.resumeAt, performance.now() + wait);
    if (this.timer) return;
    this.flow.hold(REASON);
    this.timer = setTimeout(resume, Math.ceil(wait), this);
  }

  /** The timer fired: release, or wait on if more debt came since it was set. @internal */
  resume(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const left = this.resumeAt - performance.now();
    if (left > 0.5) this.timer = setTimeout(resume, Math.ceil(left), this);
    else if (!this.waiting) this.flow.release(REASON);
  }

  /** The connection's direction is gone: nothing stays held or armed. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flow.release(REASON);
  }
}

function resume(meter: ByteMeter): void {
  meter.resume();
}

/** Outbound: charges response and tunnel bytes to their budget. */
class ByteLimiter extends Stage {
  private exchange?: Exchange;
  private readonly keys: BucketKeys;
  private readonly meter: ByteMeter;

  constructor(downstream: Subscriber<ProxyEvent>, ctx: ConnectionContext, plugin: RateLimitPlugin) {
    super(downstream);
    this.keys = new BucketKeys(plugin, ctx, 'out');
    this.meter = new ByteMeter(plugin, ctx.outboundFlow);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'data') this.meter.charge(this.keys.bytes(this.exchange), event.chunk.length);
    else if (event.kind !== 'message-end') this.exchange = event.exchange;
    this.emit(event);
  }

  protected override onFinalize(): void {
    this.meter.stop();
  }
}

/**
 * Inbound: refuses requests over the connection or request limits; charges request bytes. A
 * check the store answers later holds the client (a gate) and queues what follows behind it.
 */
class InboundLimiter extends GateStage {
  /**
   * Set once the connection is counted against maxConnections, at its first request that no
   * earlier plugin answered (a 407 before the retry with credentials keeps the connection open).
   */
  private counted = false;
  private exchange?: Exchange;
  private readonly keys: BucketKeys;
  private readonly meter?: ByteMeter;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    ctx: ConnectionContext,
    private readonly plugin: RateLimitPlugin,
    /** Non-zero when this connection was over the connection rate: ms until one would be allowed. */
    private refusedFor: number | Promise<number>,
  ) {
    super(downstream, ctx);
    this.keys = new BucketKeys(plugin, ctx, 'in');
    if (plugin.options.bytesPerSecond !== undefined) this.meter = new ByteMeter(plugin, ctx.inboundFlow);
  }

  /**
   * Connection rate, then the connection cap (at the first request not answered in place; a
   * refused connection is not counted), then the request rate.
   */
  protected check(event: RequestHeadEvent): void | Promise<void> {
    return this.checkConnectionRate(event.exchange);
  }

  /** Bytes are charged as they go on, after the gate. */
  protected override emit(event: ProxyEvent): void {
    const { meter } = this;
    if (meter) {
      if (event.kind === 'data') meter.charge(this.keys.bytes(this.exchange), event.chunk.length);
      else if (event.kind !== 'message-end') this.exchange = event.exchange;
    }
    super.emit(event);
  }

  protected override onFinalize(): void {
    this.meter?.stop();
  }

  private checkConnectionRate(exchange: Exchange): void | Promise<void> {
    const refused = this.refusedFor;
    if (typeof refused !== 'number') {
      return refused.then((wait) => {
        this.refusedFor = wait;
        return this.checkConnectionRate(exchange);
      });
    }
    if (refused > 0) {
      // A connection over the connection rate is refused as a whole.
      exchange.closeClient = true;
      return this.refuse(exchange, rateLimited(refused));
    }
    return this.checkConnectionCap(exchange);
  }

  private checkConnectionCap(exchange: Exchange): void | Promise<void> {
    const max = this.plugin.options.maxConnections;
    if (this.counted || max === undefined) return this.checkRequestRate(exchange);
    const key = this.plugin.scopeKey(this.ctx, exchange);
    const counted = this.plugin.store.acquire(key, max);
    if (typeof counted === 'boolean') return this.admitted(exchange, key, max, counted);
    return counted.then((yes) => this.admitted(exchange, key, max, yes));
  }

  private admitted(exchange: Exchange, key: string, max: number, counted: boolean): void | Promise<void> {
    if (!counted) {
      exchange.closeClient = true;
      return this.refuse(exchange, tooManyConnections(max, key));
    }
    // Closed while the store counted it: onClose has run already, so it is given back here.
    if (this.closed) return this.plugin.store.release(key);
    this.counted = true;
    this.plugin.counted(this.ctx, key);
    return this.checkRequestRate(exchange);
  }

  private checkRequestRate(exchange: Exchange): void | Promise<void> {
    if (this.plugin.options.requestsPerSecond === undefined) return;
    const wait = this.plugin.takeRequest(this.keys.requests(exchange));
    if (typeof wait === 'number') return this.requestTaken(exchange, wait);
    return wait.then((ms) => this.requestTaken(exchange, ms));
  }

  private requestTaken(exchange: Exchange, wait: number): void {
    if (wait > 0) this.refuse(exchange, rateLimited(wait));
  }

  /** Answers `error` in this request's place, in the name of this plugin. */
  private refuse(exchange: Exchange, error: ProxyError): void {
    exchange.error = error;
    exchange.answeredBy = this.plugin.name;
  }
}
