// STUB: the byte-stream fault types (latency, bandwidth, slicer, limit-data, timeout, reset,
// slow-close) are written in parallel and replace this file. Until then every type passes its
// bytes on unchanged, so the faults plugin's wiring builds and can be tested.
import type { ProxyError } from '../../core/errors.js';
import type { StreamFaultConfig } from './config.js';

export type { StreamFaultConfig } from './config.js';

/** One byte-stream fault acting on one direction of one exchange body or tunnel. */
export interface StreamFault {
  /** A chunk of this direction's data; pass on what goes on through ctx.emit, now or later. */
  data(chunk: Buffer): void;
  /** This direction's source ended (FIN); call ctx.finish() when the FIN may be passed on. */
  end(): void;
  /** Frees timers (the exchange ended, the connection closed). */
  dispose(): void;
}

/**
 * What a {@link StreamFault} acts through. After `dispose()` (which may come from inside a call to
 * `emit`) every call is ignored.
 */
export interface StreamFaultContext {
  /** Passes a chunk on down the chain. */
  emit(chunk: Buffer): void;
  /** Passes the FIN on. */
  finish(): void;
  /** Pauses this direction's source (flow-control reason 'fault'). */
  hold(): void;
  /** Resumes it. */
  release(): void;
  /** Fails the connection (limit-data, timeout): closes both sides. */
  close(error: ProxyError): void;
  /** Resets the client connection (RST). */
  reset(): void;
  /** The seeded PRNG of this decision, in [0, 1). */
  random(): number;
}

/** Passes every chunk and the FIN on at once (the stub's every type). */
class PassThrough implements StreamFault {
  constructor(private readonly ctx: StreamFaultContext) {}
  data(chunk: Buffer): void {
    this.ctx.emit(chunk);
  }
  end(): void {
    this.ctx.finish();
  }
  dispose(): void {}
}

/** Makes the fault `fault` describes, acting through `ctx`. */
export function createStreamFault(_fault: StreamFaultConfig, ctx: StreamFaultContext): StreamFault {
  return new PassThrough(ctx);
}
