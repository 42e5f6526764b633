import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { Duplex } from 'node:stream';
import type { ConnectionContext, Target } from '../core/context.js';
import { badRequest, ProxyError, toProxyError } from '../core/errors.js';
import { requestHeadEvent, type ProxyEvent, type RequestHeadEvent } from '../core/events.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';
import { Dialer, type DialVia, type UpstreamHop } from '../core/transport.js';
import { UpstreamPool } from '../transports/upstream-pool.js';
import type { Exchange, UpstreamTimeouts } from '../core/exchange.js';
import { AbortControllers } from './abort-controllers.js';
import { parentRequestHead } from './parent-request.js';

/** Options of `upstream-dialer`. */
export interface UpstreamDialerOptions {
  /** How long a connect attempt may take, in ms, before the client gets 504. */
  connectTimeoutMs: number;
  /** Idle kept-alive upstream connections kept per origin (0: no pooling). */
  maxIdlePerOrigin: number;
  /** How long an idle upstream connection is kept, in ms. */
  idleTimeoutMs: number;
  /** From the request fully sent to the final response head, in ms (0: no limit); then 504. */
  responseTimeoutMs: number;
  /** The longest gap inside a response body, in ms (0: no limit); then the response is cut and the client closed. */
  responseIdleTimeoutMs: number;
  /** The longest time a tunnel (CONNECT or 101) may carry no byte either way, in ms (0: no limit); then both sides close. */
  tunnelIdleTimeoutMs: number;
}

/**
 * Finds an upstream connection for each routed request: an idle one from the pool for the same
 * origin (and the same hop), else a new one from the Dialer service. An exchange with a route
 * (set by `upstream-proxy`) is dialled through its hops in order, each attempt bounded by the
 * connect timeout, the next tried when one cannot be connected (refused, unreachable, failed TLS,
 * timed out); the hop used is `exchange.via`. A plain HTTP request through an http(s) parent goes
 * in absolute-form with the parent's Proxy-Authorization. While dialling, the client socket is held
 * paused (reason `dial`) and the few events already read wait in a queue that this pause keeps
 * bounded. A failed dial fails only its request: the client gets 502/504 in that request's
 * place. CONNECT tunnels always get a connection of their own, never pooled.
 */
@injectable()
export class UpstreamDialerPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'upstream-dialer',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        connectTimeoutMs: { type: 'integer', minimum: 1, default: 10000, description: 'Connect timeout in ms (504 after it).' },
        maxIdlePerOrigin: { type: 'integer', minimum: 0, default: 256, description: 'Idle kept-alive upstream connections per origin.' },
        idleTimeoutMs: { type: 'integer', minimum: 1, default: 4000, description: 'How long an idle upstream connection is kept, ms.' },
        responseTimeoutMs: { type: 'integer', minimum: 0, default: 60000, description: 'Request sent to final response head, ms; then 504. 0 disables.' },
        responseIdleTimeoutMs: {
          type: 'integer',
          minimum: 0,
          default: 60000,
          description: 'Longest gap inside a response body, ms; then the response is cut and the client closed. 0 disables.',
        },
        tunnelIdleTimeoutMs: {
          type: 'integer',
          minimum: 0,
          default: 3600000,
          description: 'Longest time with no byte either way in a tunnel (CONNECT or 101), ms; then both sides close. 0 disables.',
        },
      },
    },
    after: ['head-parser'],
  };
  readonly name = UpstreamDialerPlugin.manifest.name;
  /** The upstream pool, shared by every connection of this proxy. @internal */
  readonly pool: UpstreamPool;
  /** The upstream timeouts every exchange gets (one object, shared). */
  readonly timeouts: UpstreamTimeouts;
  /** The abort controllers of dials, reused. */
  private readonly controllers = new AbortControllers();

  constructor(
    @inject(PluginOptions) private readonly options: UpstreamDialerOptions,
    @inject(Dialer) private readonly dialer: Dialer,
  ) {
    this.pool = new UpstreamPool(options);
    const { responseTimeoutMs, responseIdleTimeoutMs, tunnelIdleTimeoutMs } = options;
    this.timeouts = Object.freeze({ responseTimeoutMs, responseIdleTimeoutMs, tunnelIdleTimeoutMs });
  }

  dispose(): void {
    this.pool.close();
  }

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new DialStage(downstream, ctx, this));
  }

  /**
   * Dials with the connect timeout; calls `done` once with the socket or a ProxyError. Returns a
   * cancel function, which does nothing once `done` ran. The abort machinery lives only while
   * dialling; its controller is reused by a later dial when the dialer left nothing on it.
   * @internal
   */
  dial(target: Target, done: (error: ProxyError | undefined, socket?: Duplex) => void, via?: DialVia): () => void {
    const { connectTimeoutMs } = this.options;
    const controllers = this.controllers;
    const controller = controllers.take();
    let settled = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(DIAL_TIMEOUT);
    }, connectTimeoutMs);
    this.dialer.dial(target, controller.signal, via).then(
      (socket) => {
        settled = true;
        clearTimeout(timer);
        controllers.give(controller);
        done(undefined, socket);
      },
      (error: unknown) => {
        settled = true;
        clearTimeout(timer);
        controllers.give(controller);
        let where = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
        if (via) where += ` through parent proxy ${via.parent.name}`;
        done(timedOut ? new ProxyError('ERR_PROXY_UPSTREAM_TIMEOUT', `connecting to ${where} timed out after ${connectTimeoutMs} ms`) : toProxyError(error));
      },
    );
    return () => {
      if (settled) return; // its controller may be another dial's by now
      clearTimeout(timer);
      controller.abort(DIAL_CANCELLED);
    };
  }
}

/** Gives each request an upstream; holds the client and queues events while dialling. */
class DialStage extends Stage {
  private queue?: ProxyEvent[];
  private sourceDone = false;
  private cancel?: () => void;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
    private readonly plugin: UpstreamDialerPlugin,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (this.queue) return void this.queue.push(event);
    if (event.kind !== 'request-head' || event.exchange.answeredLocally) return this.emit(event);
    const { exchange } = event;
    const { target } = exchange;
    if (!target) {
      exchange.error = badRequest('no plugin routed this request (is http-forward or connect-handler configured?)');
      return this.emit(event);
    }
    const { route } = exchange;
    if (route !== undefined && route.length > 0) return this.routed(event, exchange, target, route);
    const pooled = exchange.isConnect ? undefined : this.plugin.pool.take(target);
    if (pooled) {
      this.use(exchange, target, pooled, true, undefined);
      return this.emit(event);
    }
    this.queue = [event];
    this.ctx.inboundFlow.hold('dial');
    this.cancel = this.plugin.dial(target, (error, socket) => this.dialled(exchange, target, undefined, error, socket));
  }

  protected override onComplete(): void {
    if (this.queue) this.sourceDone = true;
    else this.finish();
  }

  protected override onFinalize(): void {
    this.cancel?.();
  }

  /** A request with a route: an idle connection through any of its hops (in order), else a dial of the first. */
  private routed(event: RequestHeadEvent, exchange: Exchange, target: Target, route: readonly UpstreamHop[]): void {
    if (!exchange.isConnect) {
      for (const hop of route) {
        const pooled = this.plugin.pool.take(target, hop);
        if (!pooled) continue;
        this.use(exchange, target, pooled, true, hop);
        return this.emit(forHop(event, hop));
      }
    }
    this.queue = [event];
    this.ctx.inboundFlow.hold('dial');
    this.attempt(exchange, target, route, 0, undefined);
  }

  /** Dials `route[index]`; a hop that cannot be connected passes to the next, the last one's error stands. */
  private attempt(exchange: Exchange, target: Target, route: readonly UpstreamHop[], index: number, failed: string | undefined): void {
    const hop = route[index]!;
    const via = hop === 'direct' ? undefined : { parent: hop, tunnel: exchange.isConnect || hop.protocol === 'socks5' };
    this.cancel = this.plugin.dial(
      target,
      (error, socket) => {
        if (error && index + 1 < route.length && !this.closed && canFailOver(error)) {
          return this.attempt(exchange, target, route, index + 1, failed === undefined ? error.message : `${failed}; ${error.message}`);
        }
        // The answer names every hop that was tried, in order.
        if (error && failed !== undefined) error = new ProxyError(error.code, `${failed}; ${error.message}`, { cause: error, headers: error.headers });
        this.dialled(exchange, target, hop, error, socket);
      },
      via,
    );
  }

  /** Whether a dial is in progress (events are being queued). */
  private dialling(): boolean {
    return this.queue !== undefined;
  }

  private use(exchange: Exchange, target: Target, socket: Duplex, reused: boolean, hop: UpstreamHop | undefined): void {
    exchange.upstream = socket;
    exchange.reused = reused;
    exchange.timeouts = this.plugin.timeouts;
    exchange.timings.connected = performance.now();
    if (hop !== undefined) exchange.via = hop;
    const { pool } = this.plugin;
    exchange.release = exchange.isConnect ? undefined : (released, reusable) => pool.give(target, released, reusable, hop);
    exchange.redial = reused
      ? (done) => {
          const via = hop === undefined || hop === 'direct' ? undefined : { parent: hop, tunnel: hop.protocol === 'socks5' };
          this.plugin.dial(
            target,
            (error, fresh) => {
              if (fresh) this.use(exchange, target, fresh, false, hop);
              done(error, fresh);
            },
            via,
          );
        }
      : undefined;
  }

  private dialled(exchange: Exchange, target: Target, hop: UpstreamHop | undefined, error: ProxyError | undefined, socket?: Duplex): void {
    this.cancel = undefined;
    if (this.closed) return void socket?.destroy();
    if (error) exchange.error = error;
    else this.use(exchange, target, socket!, false, hop);
    const waiting = this.queue!;
    this.queue = undefined;
    // Released before the events go on (the client resumes a tick later, so none overtakes
    // them): a request answered at once on its way (a failed dial) must not look still held to a
    // drain deciding whether it is the last. A next dial holds again.
    this.ctx.inboundFlow.release('dial');
    // The head that waited goes on (in absolute-form when it goes to an http(s) parent); later
    // queued requests (pipelined) need an upstream each, so they go through onEvent again, and
    // may start the next dial and queue what follows.
    const first = waiting[0]!;
    this.emit(hop === undefined || error ? first : forHop(first as RequestHeadEvent, hop));
    for (let i = 1; i < waiting.length && !this.closed; i++) {
      if (this.dialling()) {
        this.queue!.push(...waiting.slice(i));
        return;
      }
      this.onEvent(waiting[i]!);
    }
    if (this.dialling()) return;
    if (this.sourceDone) this.finish();
  }
}

/** A failure that means the hop could not be connected (so the next hop may be tried), not that it refused. */
function canFailOver(error: ProxyError): boolean {
  return error.code === 'ERR_PROXY_UPSTREAM_CONNECT' || error.code === 'ERR_PROXY_UPSTREAM_TIMEOUT';
}

/** The head event as `hop` takes it: a plain HTTP request to an http(s) parent is rewritten, anything else passes. */
function forHop(event: RequestHeadEvent, hop: UpstreamHop): RequestHeadEvent {
  if (hop === 'direct' || hop.protocol === 'socks5' || event.exchange.isConnect) return event;
  return requestHeadEvent(parentRequestHead(event.head, event.exchange.target!, hop), event.exchange);
}

/** Shared abort reasons: aborting with a value avoids building a DOMException per dial. */
const DIAL_TIMEOUT = new ProxyError('ERR_PROXY_UPSTREAM_TIMEOUT', 'connect timeout');
const DIAL_CANCELLED = new ProxyError('ERR_PROXY_ABORTED', 'dial cancelled');
