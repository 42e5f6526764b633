import type { Duplex } from 'node:stream';
import type { ByteCounts, Target } from './context.js';
import type { ProxyError } from './errors.js';
import { getHeader, getHeaderTokens, type RequestHead } from './http/head.js';
import type { ResponseHead } from './http/response-framing.js';

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
  /** The final response head, once it arrived. */
  response?: ResponseHead;
  /** Bytes of the request and of the response, as counted by `byte-counter`. */
  readonly bytes: ByteCounts = { inbound: 0, outbound: 0 };
  /** `performance.now()` marks: upstream ready, first response byte, response end. */
  readonly timings: { connected?: number; firstByte?: number; ended?: number } = {};
  /** True once the whole request (head and body) went upstream. */
  requestSent = false;
  /** True when the upstream connection was reused from the pool. */
  reused = false;
  /** The client connection closes after this exchange (client asked, or the response needs it). */
  closeClient: boolean;
  /** The request asks to switch protocols (Upgrade with a `Connection: upgrade` token). */
  readonly upgradeRequested: boolean;
  private upgradeListener?: (upgraded: boolean) => void;

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

  /** CONNECT: the connection becomes a tunnel once the upstream is reached. */
  get isConnect(): boolean {
    return this.request.method === 'CONNECT';
  }

  /** The client is HTTP/1.0 and asked to keep the connection alive. */
  get keepAliveHttp10(): boolean {
    return this.request.version === '1.0' && !this.closeClient;
  }

  /** Called once when it is known whether an upgrade request switched protocols. */
  onUpgradeDecided(listener: (upgraded: boolean) => void): void {
    this.upgradeListener = listener;
  }

  /** Reports the upgrade decision (101, or any other final response). */
  decideUpgrade(upgraded: boolean): void {
    const listener = this.upgradeListener;
    this.upgradeListener = undefined;
    listener?.(upgraded);
  }
}
