import { ProxyError } from './errors.js';
import type { Exchange, UpstreamTimeouts } from './exchange.js';

/** What a {@link Watchdog} reads from the response side of a connection. */
export interface Watched {
  /** The exchange whose response is awaited or relayed (a tunnel's, once it became one). */
  readonly watchedExchange: Exchange | undefined;
  /** True once the connection is a tunnel. */
  readonly isTunnel: boolean;
  /** True once the final response head of the watched exchange went to the client. */
  readonly responseHeadSent: boolean;
  /** Grows with every chunk read from an upstream or forwarded to one. */
  readonly activity: number;
  /**
   * True while the proxy itself holds a direction paused (a rate limit, a fault), not a peer's
   * backpressure: that time is nobody's silence and does not count.
   */
  readonly heldByProxy: boolean;
  /** A timeout fired: the connection decides what the client gets. */
  timedOut(error: ProxyError): void;
}

const enum Phase {
  /** The request is still being received: the client's timeouts apply, not ours. */
  Request,
  /** Request sent, no final response head yet. */
  Response,
  /** Relaying a response body. */
  Body,
  /** Relaying tunnel bytes. */
  Tunnel,
}

/** The shortest tick, in ms: small timeouts (tests) are checked no finer than this. */
const MIN_TICK_MS = 10;

/**
 * Bounds the upstream phases of a connection (response head, gaps in a response body, an idle
 * tunnel) with one timer per connection rather than one per request or per chunk: it ticks at a
 * quarter of the shortest limit ahead while an exchange is watched, and compares an activity
 * counter and the phase it saw last. A limit therefore fires between 1× and 1.25× its value (plus
 * a tick, at most a quarter of it, when the phase began between two ticks). The timer stops when
 * the connection is idle and starts again with the next exchange.
 */
export class Watchdog {
  private timer?: NodeJS.Timeout;
  private exchange?: Exchange;
  private phase = Phase.Request;
  private since = 0;
  private seen = -1;

  constructor(private readonly watched: Watched) {}

  /** An exchange is being waited on: makes sure the watchdog ticks. Cheap when it already does. */
  watch(): void {
    if (this.timer) return;
    const exchange = this.watched.watchedExchange;
    if (!exchange) return;
    const every = tickMs(exchange.timeouts, this.currentPhase(exchange));
    if (every === 0) return;
    this.timer = setTimeout(onTick, every, this);
    this.timer.unref();
  }

  /** Stops ticking (the connection closed). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.exchange = undefined;
  }

  /** @internal */
  tick(): void {
    this.timer = undefined;
    const { watched } = this;
    const exchange = watched.watchedExchange;
    if (!exchange) {
      this.exchange = undefined;
      return; // idle between requests: the next exchange starts the watch again
    }
    const now = performance.now();
    const phase = this.currentPhase(exchange);
    const counts = phase !== Phase.Response; // a 1xx read while waiting does not reset the wait
    if (exchange !== this.exchange || phase !== this.phase || (counts && (watched.activity !== this.seen || watched.heldByProxy))) {
      this.exchange = exchange;
      this.phase = phase;
      this.seen = watched.activity;
      this.since = now;
    } else {
      const limit = limitOf(exchange.timeouts, phase);
      if (limit > 0 && now - this.since >= limit) {
        this.exchange = undefined;
        return watched.timedOut(timeoutError(phase, limit));
      }
    }
    this.watch();
  }

  private currentPhase(exchange: Exchange): Phase {
    const { watched } = this;
    if (watched.isTunnel) return Phase.Tunnel;
    if (watched.responseHeadSent) return Phase.Body;
    return exchange.requestSent ? Phase.Response : Phase.Request;
  }
}

function onTick(watchdog: Watchdog): void {
  watchdog.tick();
}

function limitOf(timeouts: UpstreamTimeouts, phase: Phase): number {
  switch (phase) {
    case Phase.Tunnel:
      return timeouts.tunnelIdleTimeoutMs;
    case Phase.Body:
      return timeouts.responseIdleTimeoutMs;
    case Phase.Response:
      return timeouts.responseTimeoutMs;
    default:
      return 0; // the request is still arriving: the client's timeouts bound that
  }
}

/**
 * A quarter of the shortest limit the connection may meet before its next tick (0: none). The
 * timer keeps the period it was armed with until then, so an HTTP connection ticks for all three
 * limits: a phase with a shorter one (a body after a long wait for its head, the next request's
 * wait, a 101 tunnel) must not first wait out the longer period of the phase before. A tunnel
 * stays one: its own limit alone.
 */
function tickMs(timeouts: UpstreamTimeouts, phase: Phase): number {
  const limit =
    phase === Phase.Tunnel
      ? timeouts.tunnelIdleTimeoutMs
      : shortest(shortest(timeouts.responseTimeoutMs, timeouts.responseIdleTimeoutMs), timeouts.tunnelIdleTimeoutMs);
  return limit === 0 ? 0 : Math.max(MIN_TICK_MS, limit / 4);
}

/** The smaller of two limits, 0 meaning none. */
function shortest(a: number, b: number): number {
  return a === 0 ? b : b === 0 ? a : Math.min(a, b);
}

function timeoutError(phase: Phase, limit: number): ProxyError {
  switch (phase) {
    case Phase.Tunnel:
      return new ProxyError('ERR_PROXY_TUNNEL_IDLE', `no byte through the tunnel either way for ${limit} ms`);
    case Phase.Body:
      return new ProxyError('ERR_PROXY_RESPONSE_IDLE', `the upstream sent no response byte for ${limit} ms`);
    default:
      return new ProxyError('ERR_PROXY_RESPONSE_TIMEOUT', `no response from the upstream within ${limit} ms`);
  }
}
