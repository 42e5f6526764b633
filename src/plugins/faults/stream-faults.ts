import { ProxyError } from '../../core/errors.js';
import type { StreamFaultConfig as ConfiguredStreamFault } from './config.js';

/** One byte-stream fault acting on one direction of one exchange body or tunnel. */
export interface StreamFault {
  /** A chunk of this direction's data; pass on what goes on through ctx.emit, now or later. */
  data(chunk: Buffer): void;
  /** This direction's source ended (FIN) or the message ended; call ctx.finish() when it may be passed on. */
  end(): void;
  /** Frees timers (the exchange ended, the connection closed). */
  dispose(): void;
}

/** What a {@link StreamFault} acts through: the stage that owns it supplies one per fault and direction. */
export interface StreamFaultContext {
  /** Passes a chunk on down the chain. */
  emit(chunk: Buffer): void;
  /** Passes the end on. */
  finish(): void;
  /** Pauses this direction's source (flow-control reason `fault`). */
  hold(): void;
  /** Resumes it. */
  release(): void;
  /** Fails the connection: closes both sides. */
  close(error: ProxyError): void;
  /** Resets the client connection (RST). */
  reset(): void;
  /** The seeded PRNG of this decision, in [0, 1). */
  random(): number;
}

/** A fault's own part of its options: matching, probability and direction are the plugin's business. */
type Attributes<C> = C extends unknown ? Omit<C, 'direction' | 'probability' | 'match'> : never;

/** One byte-stream fault's name, type and attributes (the options' types, in config.ts), told apart by `type`. */
export type StreamFaultConfig = Attributes<ConfiguredStreamFault>;

/**
 * A bandwidth fault cuts a chunk into pieces of at most this many ms worth of bytes, so a large
 * read at a low rate trickles out instead of going out at once and then stalling the source.
 */
const BANDWIDTH_SLICE_MS = 100;
/**
 * Time a bandwidth fault may have fallen behind its schedule and still catch up (late timers,
 * the read after a resume): without it, every timer's lateness would lower the rate.
 */
const BANDWIDTH_CREDIT_MS = 10;
/**
 * A timer may fire a little early (libuv counts whole ms from a cached loop time): when it fires, a
 * piece due within this much goes now rather than after another 1 ms timer. Only then: a wait
 * computed right after a piece went is kept whole, so a 1 ms slicer delay is a delay.
 */
const SLACK_MS = 1;

/**
 * Creates the fault `fault` acting through `ctx`. The fault's time (the start of `timeout` and
 * `reset`) begins now. Throws `ERR_PROXY_CONFIG` when an attribute is out of range.
 */
export function createStreamFault(fault: StreamFaultConfig, ctx: StreamFaultContext): StreamFault {
  switch (fault.type) {
    case 'latency':
      return new Latency(check(fault, 'latencyMs', 0), check(fault, 'jitterMs', 0), ctx);
    case 'bandwidth':
      return new Bandwidth(check(fault, 'bytesPerSecond', Number.MIN_VALUE), ctx);
    case 'slicer':
      return new Slicer(check(fault, 'averageSize', 1), check(fault, 'sizeVariation', 0), check(fault, 'delayMs', 0), ctx);
    case 'limit-data':
      return new LimitData(fault.name, check(fault, 'bytes', 0), ctx);
    case 'timeout':
      return new Timeout(fault.name, check(fault, 'afterMs', 0), ctx);
    case 'reset':
      return new Reset(check(fault, 'afterMs', 0), ctx);
    case 'slow-close':
      return new SlowClose(check(fault, 'delayMs', 0), ctx);
    default: {
      // Only reached from untyped callers (a plugins.json entry the schema let through).
      const { type, name } = fault as { type: unknown; name: unknown };
      throw new ProxyError('ERR_PROXY_CONFIG', `fault "${String(name)}": unknown stream fault type ${String(type)}`);
    }
  }
}

/** The attribute `key` of `fault`, if it is a finite number of at least `min`; else a config error naming it. */
function check<F extends StreamFaultConfig, K extends keyof F & string>(fault: F, key: K, min: number): number {
  const value = fault[key];
  if (typeof value === 'number' && Number.isFinite(value) && value >= min) return value;
  const bound = min === Number.MIN_VALUE ? 'greater than 0' : `at least ${min}`;
  throw new ProxyError('ERR_PROXY_CONFIG', `fault ${fault.type} "${fault.name}": ${key} must be a finite number ${bound}, got ${String(value)}`);
}

/** Arms `callback` once after `ms`, unref'd: a fault's timer never keeps the process alive. */
function timer(callback: () => void, ms: number): NodeJS.Timeout {
  const handle = setTimeout(callback, ms);
  handle.unref();
  return handle;
}

/**
 * The faults that pace a queue of chunks (latency, bandwidth, slicer). A subclass says how long
 * the next piece must wait and how big it is; this class emits pieces in order, with one timer at
 * a time (one callback per fault, reused through `refresh()` when the wait repeats), and holds the
 * source while anything waits, so the queue never grows beyond the chunk in hand and those already
 * read when the hold took effect. The end is passed on once the queue is empty and the wait after
 * the last piece is over. Emitting is re-entrant safe: a chunk, an end or a dispose that arrives
 * from inside `ctx.emit` (or `ctx.release`) is taken up by the loop already running.
 */
abstract class PacedFault implements StreamFault {
  private readonly queue: Buffer[] = [];
  /** Bytes of `queue[0]` already emitted. */
  private offset = 0;
  private ended = false;
  private finished = false;
  private holding = false;
  private pumping = false;
  private armed = false;
  private disposed = false;
  private handle?: NodeJS.Timeout;
  /** The duration `handle` was made with: a wait of the same length refreshes it instead of making another. */
  private handleMs = -1;
  private readonly onTimer = (): void => {
    this.armed = false;
    this.pump(SLACK_MS);
  };

  constructor(protected readonly ctx: StreamFaultContext) {}

  data(chunk: Buffer): void {
    if (this.disposed || this.ended || chunk.length === 0) return;
    this.queue.push(chunk);
    this.queued();
    if (!this.armed && !this.pumping) this.pump(0);
  }

  end(): void {
    if (this.disposed || this.ended) return;
    this.ended = true;
    if (!this.armed && !this.pumping) this.pump(0);
  }

  /** Frees the timer, drops what is queued and gives back a held source: a fault never leaves a pause behind. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.armed = false;
    clearTimeout(this.handle);
    this.queue.length = 0;
    this.unhold();
  }

  /** A chunk was queued (the latency fault draws its delay here). */
  protected queued(): void {}
  /** Ms before the next piece may go (≤ 0: now); with nothing queued, how long the source stays held after the last one. */
  protected abstract wait(now: number, queued: boolean): number;
  /** The size of the next piece, at most `remaining` bytes of the chunk at the head of the queue. */
  protected abstract size(remaining: number): number;
  /** A piece of `bytes` bytes goes out now. */
  protected abstract sent(bytes: number, now: number): void;

  /** Emits what is due (within `slack` ms), then arms the timer for the rest or releases the source and passes the end. */
  private pump(slack: number): void {
    this.pumping = true;
    try {
      while (!this.disposed) {
        const now = performance.now();
        const queued = this.queue.length > 0;
        const wait = this.wait(now, queued);
        if (wait > slack) {
          this.hold();
          this.arm(wait);
          return;
        }
        if (!queued) {
          this.unhold();
          // Releasing may have read a chunk at once (a synchronous source): go round again.
          if (this.queue.length > 0) continue;
          if (this.ended && !this.finished) {
            this.finished = true;
            this.ctx.finish();
          }
          return;
        }
        const head = this.queue[0]!;
        const size = Math.min(head.length - this.offset, this.size(head.length - this.offset));
        const piece = size === head.length ? head : head.subarray(this.offset, this.offset + size);
        this.offset += size;
        if (this.offset === head.length) {
          this.queue.shift();
          this.offset = 0;
        }
        this.sent(size, now);
        this.ctx.emit(piece);
        // The slack was for the timer's lateness; the wait after this piece is kept whole.
        slack = 0;
      }
    } finally {
      this.pumping = false;
    }
  }

  private arm(wait: number): void {
    const ms = Math.ceil(wait);
    if (this.handle && this.handleMs === ms) this.handle.refresh();
    else {
      this.handle = timer(this.onTimer, ms);
      this.handleMs = ms;
    }
    this.armed = true;
  }

  private hold(): void {
    if (this.holding) return;
    this.holding = true;
    this.ctx.hold();
  }

  private unhold(): void {
    if (!this.holding) return;
    this.holding = false;
    this.ctx.release();
  }
}

/**
 * `latency`: each chunk is due `latencyMs` ± `jitterMs` after it came, but never before the chunk
 * ahead of it (a short draw waits for a long one before it, as a serial link would).
 */
class Latency extends PacedFault {
  /** When each queued chunk is due (performance.now() time), in queue order. */
  private readonly due: number[] = [];
  private lastDue = -Infinity;

  constructor(
    private readonly latencyMs: number,
    private readonly jitterMs: number,
    ctx: StreamFaultContext,
  ) {
    super(ctx);
  }

  protected override queued(): void {
    const jitter = this.jitterMs > 0 ? (2 * this.ctx.random() - 1) * this.jitterMs : 0;
    this.lastDue = Math.max(this.lastDue, performance.now() + Math.max(0, this.latencyMs + jitter));
    this.due.push(this.lastDue);
  }

  protected wait(now: number, queued: boolean): number {
    return queued ? this.due[0]! - now : 0;
  }

  protected size(remaining: number): number {
    return remaining;
  }

  protected sent(): void {
    this.due.shift();
  }
}

/**
 * `bandwidth`: emit, then hold the source until the bytes sent are paid for at `bytesPerSecond`.
 * Chunks are cut into pieces of at most {@link BANDWIDTH_SLICE_MS} ms worth, so the data
 * trickles at the rate rather than bursting and stalling. Idle time earns no credit beyond
 * {@link BANDWIDTH_CREDIT_MS}, so the average over any stretch stays at the rate.
 */
class Bandwidth extends PacedFault {
  private readonly sliceBytes: number;
  private readonly msPerByte: number;
  /** When the bytes sent so far are paid for (performance.now() time). */
  private paidUntil = -Infinity;

  constructor(bytesPerSecond: number, ctx: StreamFaultContext) {
    super(ctx);
    this.sliceBytes = Math.max(1, Math.floor((bytesPerSecond * BANDWIDTH_SLICE_MS) / 1000));
    this.msPerByte = 1000 / bytesPerSecond;
  }

  protected wait(now: number): number {
    return this.paidUntil - now;
  }

  protected size(): number {
    return this.sliceBytes;
  }

  protected sent(bytes: number, now: number): void {
    this.paidUntil = Math.max(this.paidUntil, now - BANDWIDTH_CREDIT_MS) + bytes * this.msPerByte;
  }
}

/** `slicer`: pieces of `averageSize` ± `sizeVariation` bytes (views, never copies), each followed by a `delayMs` pause. */
class Slicer extends PacedFault {
  private nextAt = -Infinity;

  constructor(
    private readonly averageSize: number,
    private readonly sizeVariation: number,
    private readonly delayMs: number,
    ctx: StreamFaultContext,
  ) {
    super(ctx);
  }

  protected wait(now: number): number {
    return this.nextAt - now;
  }

  protected size(): number {
    const variation = this.sizeVariation > 0 ? (2 * this.ctx.random() - 1) * this.sizeVariation : 0;
    return Math.max(1, Math.round(this.averageSize + variation));
  }

  protected sent(_bytes: number, now: number): void {
    this.nextAt = now + this.delayMs;
  }
}

/**
 * `limit-data`: passes `bytes` bytes, then closes the connection. The chunk that reaches the limit
 * goes on cut at the limit (a view), and the close follows at once, even when the limit falls
 * exactly at a chunk's end; with 0, the first chunk closes and nothing passes. An end before the
 * limit passes on.
 */
class LimitData implements StreamFault {
  private left: number;
  private done = false;

  constructor(
    private readonly name: string,
    private readonly bytes: number,
    private readonly ctx: StreamFaultContext,
  ) {
    this.left = bytes;
  }

  data(chunk: Buffer): void {
    if (this.done || chunk.length === 0) return;
    if (chunk.length < this.left) {
      this.left -= chunk.length;
      this.ctx.emit(chunk);
      return;
    }
    const part = chunk.length === this.left ? chunk : chunk.subarray(0, this.left);
    this.left = 0;
    this.done = true;
    if (part.length > 0) this.ctx.emit(part);
    this.ctx.close(new ProxyError('ERR_PROXY_ABORTED', `fault limit-data "${this.name}": ${this.bytes} bytes passed, the connection is closed`));
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.ctx.finish();
  }

  dispose(): void {
    this.done = true;
  }
}

/**
 * `timeout`: from the fault's start (its creation) nothing is relayed: chunks are read and dropped,
 * the end is swallowed. After `afterMs` the connection is closed; with 0 it never is (the stall
 * lasts until something else closes the connection and disposes the fault). The timer is not
 * restarted by data.
 */
class Timeout implements StreamFault {
  private readonly handle?: NodeJS.Timeout;
  private done = false;

  constructor(
    private readonly name: string,
    private readonly afterMs: number,
    private readonly ctx: StreamFaultContext,
  ) {
    if (afterMs > 0) this.handle = timer(() => this.fire(), afterMs);
  }

  data(): void {}

  end(): void {}

  dispose(): void {
    this.done = true;
    clearTimeout(this.handle);
  }

  private fire(): void {
    if (this.done) return;
    this.done = true;
    this.ctx.close(new ProxyError('ERR_PROXY_ABORTED', `fault timeout "${this.name}": nothing relayed for ${this.afterMs} ms, the connection is closed`));
  }
}

/**
 * `reset`: data and the end pass until, `afterMs` after the fault's start, the client connection is
 * reset; nothing passes after. The reset always comes from a timer (with 0, on the next turn),
 * never from inside {@link createStreamFault}.
 */
class Reset implements StreamFault {
  private readonly handle: NodeJS.Timeout;
  private done = false;

  constructor(
    afterMs: number,
    private readonly ctx: StreamFaultContext,
  ) {
    this.handle = timer(() => this.fire(), afterMs);
  }

  data(chunk: Buffer): void {
    if (!this.done) this.ctx.emit(chunk);
  }

  end(): void {
    if (!this.done) this.ctx.finish();
  }

  dispose(): void {
    this.done = true;
    clearTimeout(this.handle);
  }

  private fire(): void {
    if (this.done) return;
    this.done = true;
    this.ctx.reset();
  }
}

/** `slow-close`: data passes; the end passes `delayMs` after it came (at once with 0). */
class SlowClose implements StreamFault {
  private handle?: NodeJS.Timeout;
  private ended = false;
  private done = false;

  constructor(
    private readonly delayMs: number,
    private readonly ctx: StreamFaultContext,
  ) {}

  data(chunk: Buffer): void {
    if (!this.done && !this.ended) this.ctx.emit(chunk);
  }

  end(): void {
    if (this.done || this.ended) return;
    this.ended = true;
    if (this.delayMs > 0) this.handle = timer(() => this.fire(), this.delayMs);
    else this.fire();
  }

  dispose(): void {
    this.done = true;
    clearTimeout(this.handle);
  }

  private fire(): void {
    if (this.done) return;
    this.done = true;
    this.ctx.finish();
  }
}
