import { ProxyError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import type { FlowControl } from '../core/flow-control.js';
import { getHeader } from '../core/http/head.js';

/** How slow a request body may be (options of `head-parser`; 0 turns a limit off). */
export interface BodyLimits {
  /** Longest gap between two body bytes, ms. */
  bodyTimeoutMs: number;
  /** Lowest average body rate, bytes per second, from the body's start. */
  minBodyBytesPerSecond: number;
  /** Time from the body's start before its rate is checked, ms. */
  bodyGracePeriodMs: number;
}

/** The stage whose request body is watched. */
export interface WatchedBody {
  /** Bytes of the current request's body read so far (reset at each request head). */
  readonly bodyBytes: number;
  /** The body broke a limit: fail the connection with `error`. */
  bodyFailed(error: ProxyError): void;
}

/** Longest tick: a rate needs no finer look, and a rare tick costs an idle connection nothing. */
const MAX_TICK_MS = 1000;

/**
 * Watches the request body in progress on one connection against {@link BodyLimits}. One timer
 * per connection, created on the first body that spans reads and then refreshed: it ticks only
 * while a body is in progress, reading the byte counter and the clock once per tick, so a chunk
 * costs nothing here. Time while the proxy itself holds the client paused (backpressure from the
 * upstream, a dial, a gate) or while the client waits for `100 Continue` is not the client's
 * delay: it counts neither as a gap nor toward the rate (seen at tick granularity).
 */
export class BodyWatch {
  private timer?: NodeJS.Timeout;
  private readonly tickMs: number;
  /** A body is in progress; when false the timer's next tick does nothing and it rests. */
  private active = false;
  private exchange?: Exchange;
  /** `bodyBytes` at the last tick, and `performance.now()` when it last changed (or the wait was not the client's). */
  private seen = 0;
  private progressAt = 0;
  private tickAt = 0;
  /** Time the client could send, ms: the denominator of the rate. */
  private activeMs = 0;
  /** The proxy held the client at the last tick: the interval since counts as not the client's. */
  private heldAtTick = false;
  /** An `Expect: 100-continue` request before any body byte or response byte. */
  private awaitingContinue = false;

  constructor(
    private readonly limits: BodyLimits,
    private readonly body: WatchedBody,
    private readonly flow: FlowControl,
  ) {
    const { bodyTimeoutMs } = limits;
    this.tickMs = Math.max(1, Math.min(MAX_TICK_MS, bodyTimeoutMs > 0 ? bodyTimeoutMs / 4 : MAX_TICK_MS));
  }

  /** True when any limit is on (else no watch is needed at all). */
  static needed(limits: BodyLimits): boolean {
    return limits.bodyTimeoutMs > 0 || limits.minBodyBytesPerSecond > 0;
  }

  /** True while a body is being watched. */
  get watching(): boolean {
    return this.active;
  }

  /** Starts watching the body of `exchange` (its bytes so far arrived now). */
  start(exchange: Exchange): void {
    const now = performance.now();
    this.exchange = exchange;
    this.seen = this.body.bodyBytes;
    this.progressAt = now;
    this.tickAt = now;
    this.activeMs = 0;
    this.heldAtTick = false;
    this.awaitingContinue = this.seen === 0 && expectsContinue(exchange);
    this.active = true;
    if (this.timer) this.timer.refresh();
    else {
      this.timer = setTimeout(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
  }

  /** The body ended: the timer's next tick finds nothing to watch (no clear, so it can be refreshed). */
  stop(): void {
    this.active = false;
    this.exchange = undefined;
  }

  /** Teardown: frees the timer. */
  dispose(): void {
    this.stop();
    clearTimeout(this.timer);
  }

  private tick(): void {
    if (!this.active) return;
    const now = performance.now();
    const bytes = this.body.bodyBytes;
    const elapsed = now - this.tickAt;
    this.tickAt = now;
    if (bytes !== this.seen) {
      this.seen = bytes;
      this.progressAt = now;
    }
    if (this.awaitingContinue) {
      const exchange = this.exchange!;
      // Over once a body byte came, or the client got an answer (100 or final) to act on.
      this.awaitingContinue = bytes === 0 && exchange.timings.firstByte === undefined && exchange.error === undefined;
    }
    const held = this.flow.paused || this.awaitingContinue;
    if (held) this.progressAt = now;
    else {
      if (!this.heldAtTick) this.activeMs += elapsed;
      const error = this.check(now, bytes);
      if (error) return this.body.bodyFailed(error);
    }
    this.heldAtTick = held;
    this.timer!.refresh();
  }

  private check(now: number, bytes: number): ProxyError | undefined {
    const { bodyTimeoutMs, minBodyBytesPerSecond, bodyGracePeriodMs } = this.limits;
    if (bodyTimeoutMs > 0 && now - this.progressAt >= bodyTimeoutMs) {
      return new ProxyError('ERR_PROXY_BODY_TIMEOUT', `no request body byte for ${bodyTimeoutMs} ms`);
    }
    const { activeMs } = this;
    if (minBodyBytesPerSecond > 0 && activeMs >= bodyGracePeriodMs && activeMs > 0 && bytes * 1000 < minBodyBytesPerSecond * activeMs) {
      const rate = Math.round((bytes * 1000) / activeMs);
      return new ProxyError('ERR_PROXY_BODY_TOO_SLOW', `request body at ${rate} bytes/s, below the minimum of ${minBodyBytesPerSecond}`);
    }
    return undefined;
  }
}

/** The client waits for `100 Continue` before it sends the body (RFC 9110 §10.1.1). */
function expectsContinue(exchange: Exchange): boolean {
  return getHeader(exchange.request.headers, 'expect')?.trim().toLowerCase() === '100-continue';
}
