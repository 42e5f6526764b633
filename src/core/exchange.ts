import type { Duplex } from 'node:stream';
import type { ByteCounts, Target } from './context.js';
import type { ProxyError } from './errors.js';
import { getHeader, getHeaderTokens, type RequestHead } from './http/head.js';
import type { ResponseHead } from './http/response-framing.js';
import type { UpstreamHop } from './transport.js';

/** How long the core waits on an upstream, in ms (0: no limit); the dialling plugin sets them per exchange. */
export interface UpstreamTimeouts {
  /** From the request fully sent to the final response head; then 504. */
  readonly responseTimeoutMs: number;
  /** The longest gap inside a response body; then the response is cut and the client closed. */
  readonly responseIdleTimeoutMs: number;
  /** The longest time with no byte either way through a tunnel (CONNECT or 101); then both close. */
  readonly tunnelIdleTimeoutMs: number;
}

/** The timeouts of an exchange whose upstream came from a plugin that set none. */
export const DEFAULT_UPSTREAM_TIMEOUTS: UpstreamTimeouts = Object.freeze({
  responseTimeoutMs: 60_000,
  responseIdleTimeoutMs: 60_000,
  tunnelIdleTimeoutMs: 3_600_000,
});

/** `performance.now()` marks of an exchange, for logs and latency metrics. */
export interface ExchangeTimings {
  /** When its upstream connection was ready (dialled or taken from the pool). */
  connected?: number;
  /** When the first byte of its response arrived. */
  firstByte?: number;
  /** When its response was relayed to its end. */
  ended?: number;
}

/** One fault that fired for an exchange: recorded by the `faults` plugin, read by logs and capture. */
export interface FaultDecision {
  /** The fault's unique name, as configured. */
  readonly name: string;
  /** Its type (`abort`, `delay`, `latency`, …). */
  readonly type: string;
  /** The direction it acts on: `upstream` (client → origin), `downstream` (origin → client) or `both`. */
  readonly direction: 'upstream' | 'downstream' | 'both';
  /** The values drawn for this exchange (a jittered delay, a slice size); empty when nothing was drawn. */
  readonly params: Readonly<Record<string, number>>;
}

/** A response a plugin gives in the upstream's place. Its head must frame the body (Content-Length). */
export interface LocalReply {
  /** Status line and fields sent to the client, with a Content-Length that matches `body`. */
  readonly head: ResponseHead;
  /** The whole body, sent as is. */
  readonly body: Buffer;
}

/**
 * One request and its response on a client connection (several per connection with keep-alive).
 * Events of a request and of its response carry the same Exchange, so plugins can follow a
 * request from head to response end: where it went, its status, its bytes and its timings.
 */
export class Exchange {
  /** `performance.now()` when its head was parsed. */
  readonly startedAt = performance.now();
  /** Where the request goes; set by the routing plugin (`http-forward`, `connect-handler`). */
  target?: Target;
  /**
   * How the upstream may be reached, in failover order; set by a routing plugin (`upstream-proxy`).
   * Undefined: straight to the target.
   */
  route?: readonly UpstreamHop[];
  /** The hop its upstream was actually reached through (when a route was set), for logs. */
  via?: UpstreamHop;
  /** The upstream connection carrying it; set by the plugin that dials (`upstream-dialer`). */
  upstream?: Duplex;
  /** Gives the upstream back once the exchange is over; set by whoever supplied it (the pool). */
  release?: (socket: Duplex, reusable: boolean) => void;
  /**
   * Opens a fresh upstream to retry this request on; set by the plugin that supplied a reused
   * (pooled) one, which an origin may have closed just as the request was written to it.
   */
  redial?: (done: (error: ProxyError | undefined, socket?: Duplex) => void) => void;
  /** The request's bytes as sent, kept while it can be replayed (reused upstream, no body). */
  replay?: Buffer;
  /** The authenticated proxy user, set by an authentication plugin (`proxy-auth`). */
  user?: string;
  /** Name of the plugin that answered in the upstream's place (set with `error` by that plugin). */
  answeredBy?: string;
  /** Set by a plugin that refuses or fails the request: the client gets this error, in order. */
  error?: ProxyError;
  /**
   * Set by a plugin that answers the request itself (a TRACE at Max-Forwards 0, a mock): the
   * client gets this response, in order, and nothing is dialled.
   */
  reply?: LocalReply;
  /** The faults that fired for this request (or tunnel), in the order they were drawn; set by `faults`. */
  faults?: FaultDecision[];
  /** How long the core waits on this exchange's upstream; set by the plugin that supplies it. */
  timeouts: UpstreamTimeouts = DEFAULT_UPSTREAM_TIMEOUTS;
  /** Bytes of request body the head announced: Content-Length, 0 for none, -1 for chunked. */
  bodyLength = 0;
  /** The final response head, once it arrived (as the upstream sent it, or the proxy's own answer). */
  response?: ResponseHead;
  /**
   * The final response head as written to the client: after every outbound plugin, with the
   * proxy's own Connection field; set by the client sink (undefined while none was written).
   */
  sentResponse?: ResponseHead;
  /** Bytes of the request and of the response, as counted by `byte-counter`. */
  readonly bytes: ByteCounts = { inbound: 0, outbound: 0 };
  /** `performance.now()` marks: upstream ready, first response byte, response end. */
  readonly timings: ExchangeTimings = {};
  /** True once the whole request (head and body) went upstream. */
  requestSent = false;
  /** True when the upstream connection was reused from the pool. */
  reused = false;
  /** The client connection closes after this exchange (client asked, or the response needs it). */
  closeClient: boolean;
  /** The request asks to switch protocols (Upgrade with a `Connection: upgrade` token). */
  readonly upgradeRequested: boolean;
  private upgradeListener?: (upgraded: boolean) => void;
  private upgradeDecision?: boolean;

  constructor(
    /** 1, 2, … on its client connection. */
    readonly id: number,
    /** The request head as the client sent it; plugins forward rewritten copies. */
    readonly request: RequestHead,
  ) {
    const connection = getHeaderTokens(request.headers, 'connection');
    this.upgradeRequested = connection.includes('upgrade') && getHeader(request.headers, 'upgrade') !== undefined;
    this.closeClient = request.version === '1.0' ? !connection.includes('keep-alive') : connection.includes('close');
  }

  /** True when the request goes to no upstream: a plugin refused it (`error`) or answered it (`reply`). */
  get answeredLocally(): boolean {
    return this.error !== undefined || this.reply !== undefined;
  }

  /** CONNECT: the connection becomes a tunnel once the upstream is reached. */
  get isConnect(): boolean {
    return this.request.method === 'CONNECT';
  }

  /** The client is HTTP/1.0 and asked to keep the connection alive. */
  get keepAliveHttp10(): boolean {
    return this.request.version === '1.0' && !this.closeClient;
  }

  /**
   * Called once when it is known whether the connection switches to a tunnel after this request:
   * an upgrade request (101 or not) or a CONNECT (established or refused). At once if known already.
   */
  onUpgradeDecided(listener: (upgraded: boolean) => void): void {
    if (this.upgradeDecision !== undefined) return listener(this.upgradeDecision);
    this.upgradeListener = listener;
  }

  /** Reports the switch decision (101 or a CONNECT's 200, or any other final response); the first one counts. */
  decideUpgrade(upgraded: boolean): void {
    if (this.upgradeDecision !== undefined) return;
    this.upgradeDecision = upgraded;
    const listener = this.upgradeListener;
    this.upgradeListener = undefined;
    listener?.(upgraded);
  }
}
