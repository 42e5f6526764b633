import type { ProxyError } from '../../core/errors.js';
import type { FlowControl } from '../../core/flow-control.js';
import type { StreamFaultConfig } from './config.js';
import type { StreamSpec } from './fault-set.js';
import { Random } from './random.js';
import type { StreamFault, StreamFaultContext } from './stream-faults.js';

/** Makes one byte-stream fault (the `createStreamFault` of stream-faults.ts; tests pass their own). */
export type StreamFaultFactory = (fault: StreamFaultConfig, ctx: StreamFaultContext) => StreamFault;

/** Who a chain hands its output to: the stage of its direction. */
export interface ChainOwner {
  /** A chunk came out of the last fault. */
  chainData(chunk: Buffer): void;
  /** Everything given to the chain has come out of it (called whenever that becomes true). */
  chainDrained(): void;
  /** The FIN came out of the last fault. */
  chainFinished(): void;
  /** A fault failed the connection. */
  chainFailed(error: ProxyError): void;
  /** A fault reset the client connection. */
  chainReset(): void;
}

/** The flow-control reason held while a stream fault asks its direction's source to pause. */
export const FAULT_REASON = 'fault';

/**
 * The byte-stream faults that fired for one direction of one exchange body or tunnel, chained in
 * list order: a chunk goes through each in turn, then to the owner. It counts the bytes given to
 * it and not yet out of it, so its owner can tell when it holds nothing (a message end waits for
 * that). One pause reason (`fault`) stands for all its faults: held while any of them holds.
 */
export class StreamChain {
  /** Bytes given to the first fault that have not come out of the last. */
  pending = 0;
  private readonly links: Link[];
  private readonly faults: StreamFault[];
  /** How many links hold their direction paused. */
  private holding = 0;
  private disposed = false;

  constructor(
    specs: readonly StreamSpec[],
    create: StreamFaultFactory,
    private readonly flow: FlowControl,
    private readonly owner: ChainOwner,
  ) {
    this.links = specs.map((spec, index) => new Link(this, index, spec.seed));
    this.faults = specs.map((spec, index) => create(spec.config, this.links[index]!));
  }

  /** A chunk of the direction's data enters the chain. */
  data(chunk: Buffer): void {
    if (this.disposed) return;
    this.pending += chunk.length;
    this.faults[0]!.data(chunk);
  }

  /** The direction's source ended (a tunnel's FIN). */
  end(): void {
    if (!this.disposed) this.faults[0]!.end();
  }

  /** Frees every fault's timers and the pause it held; later calls from the faults are ignored. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const fault of this.faults) fault.dispose();
    if (this.holding > 0) this.flow.release(FAULT_REASON);
    this.holding = 0;
  }

  /** @internal A fault emitted a chunk. */
  forward(index: number, chunk: Buffer): void {
    if (this.disposed) return;
    const next = this.faults[index + 1];
    if (next) return next.data(chunk);
    this.pending -= chunk.length;
    this.owner.chainData(chunk);
    if (this.pending <= 0 && !this.disposed) this.owner.chainDrained();
  }

  /** @internal A fault passed the FIN on. */
  finished(index: number): void {
    if (this.disposed) return;
    const next = this.faults[index + 1];
    if (next) next.end();
    else this.owner.chainFinished();
  }

  /** @internal A link starts or stops holding its direction paused. */
  hold(holding: boolean): void {
    if (this.disposed) return;
    if (holding) {
      if (this.holding++ === 0) this.flow.hold(FAULT_REASON);
    } else if (--this.holding === 0) this.flow.release(FAULT_REASON);
  }

  /** @internal */
  fail(error: ProxyError): void {
    if (!this.disposed) this.owner.chainFailed(error);
  }

  /** @internal */
  reset(): void {
    if (!this.disposed) this.owner.chainReset();
  }
}

/** The context one fault of a chain acts through: its place in the chain, its pause, its generator. */
class Link implements StreamFaultContext {
  private held = false;
  private readonly generator: Random;

  constructor(
    private readonly chain: StreamChain,
    private readonly index: number,
    seed: number,
  ) {
    this.generator = new Random(seed);
  }

  emit(chunk: Buffer): void {
    this.chain.forward(this.index, chunk);
  }

  finish(): void {
    this.chain.finished(this.index);
  }

  hold(): void {
    if (this.held) return;
    this.held = true;
    this.chain.hold(true);
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.chain.hold(false);
  }

  close(error: ProxyError): void {
    this.chain.fail(error);
  }

  reset(): void {
    this.chain.reset();
  }

  random(): number {
    return this.generator.next();
  }
}
