import type net from 'node:net';
import type { Subscriber } from 'rxjs';
import type { ConnectionContext } from '../../core/context.js';
import type { ProxyError } from '../../core/errors.js';
import type { ProxyEvent } from '../../core/events.js';
import type { Exchange } from '../../core/exchange.js';
import type { FlowControl } from '../../core/flow-control.js';
import { Stage } from '../../core/stage.js';
import type { FaultPlan, FaultSet, StreamSpec } from './fault-set.js';
import { StreamChain, type ChainOwner, type StreamFaultFactory } from './stream-chain.js';

/** What the stages read from their plugin (an interface, so they need not import its class). */
export interface FaultsHost {
  /** The plugin's name, for `answeredBy`. */
  readonly name: string;
  /** The faults in force; read once per request, at its head. */
  readonly current: FaultSet;
  /** Plans of exchanges with something to apply to their response; the outbound stage takes them. */
  readonly plans: WeakMap<Exchange, FaultPlan>;
  /** Makes byte-stream faults. */
  readonly createStreamFault: StreamFaultFactory;
}

/** The flow-control reason held while events wait behind a delay or behind a body still in the chain. */
export const WAIT_REASON = 'fault-wait';

/**
 * What the inbound and outbound fault stages share: one event may be held (a head behind a
 * `delay`, a message end behind the body data a stream fault still holds), and while it is, the
 * events after it queue in order and the direction's source is held paused (reason `fault-wait`),
 * so the queue stays bounded by what was already read. And the current body's byte-stream chain.
 */
export abstract class FaultStage extends Stage implements ChainOwner {
  /** The byte-stream faults of the current exchange body or tunnel, in this direction. */
  protected chain?: StreamChain;
  /** The chain belongs to a tunnel: it lives until the connection ends, and takes the FIN. */
  protected tunnelChain = false;
  /** Events that arrived while one was held; undefined when none is held. */
  private queue?: ProxyEvent[];
  /** The event held. */
  private held?: ProxyEvent;
  /** Set while the held event waits for the chain to give out all it holds. */
  private flushing = false;
  private timer?: NodeJS.Timeout;
  private sourceDone = false;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    protected readonly ctx: ConnectionContext,
    protected readonly host: FaultsHost,
    /** The source of this direction: the client (inbound) or the upstream relayed (outbound). */
    private readonly flow: FlowControl,
  ) {
    super(downstream);
  }

  /** Handles one event in order (none is held). */
  protected abstract handle(event: ProxyEvent): void;

  /** Goes on with the held event once its wait is over. */
  protected abstract resume(event: ProxyEvent): void;

  /** A chunk out of the chain goes on (the outbound stage also counts it for `cut-response`). */
  abstract chainData(chunk: Buffer): void;

  protected onEvent(event: ProxyEvent): void {
    if (this.queue) this.queue.push(event);
    else this.handle(event);
  }

  protected override onComplete(): void {
    if (this.queue) this.sourceDone = true;
    else this.sourceEnded();
  }

  protected override onFinalize(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dropChain();
    this.flow.release(WAIT_REASON);
  }

  /** Holds `event`, and what follows it, for `ms`. */
  protected delay(event: ProxyEvent, ms: number): void {
    this.hold(event);
    this.timer = setTimeout(delayOver, ms, this);
  }

  /** A message end: goes on once the chain gave out everything it was given (at once if it holds nothing). */
  protected endBody(event: ProxyEvent): void {
    if (!this.chain || this.chain.pending <= 0) return this.resume(event);
    this.hold(event);
    this.flushing = true;
  }

  /** Starts the chain of `specs` for the body (or tunnel) that begins now. */
  protected startChain(specs: readonly StreamSpec[], tunnel: boolean): void {
    this.chain = new StreamChain(specs, this.host.createStreamFault, this.flow, this);
    this.tunnelChain = tunnel;
  }

  /** Disposes the chain, if any (its body ended, a new exchange began, the stage is torn down). */
  protected dropChain(): void {
    this.chain?.dispose();
    this.chain = undefined;
    this.tunnelChain = false;
  }

  chainDrained(): void {
    if (!this.flushing) return;
    this.flushing = false;
    // Later, not inside the fault's own call: going on disposes the chain that is calling.
    queueMicrotask(() => {
      if (!this.closed) this.proceed();
    });
  }

  chainFinished(): void {
    queueMicrotask(() => this.finish());
  }

  chainFailed(error: ProxyError): void {
    this.fail(error);
  }

  chainReset(): void {
    const client = this.ctx.client as Partial<net.Socket> & { destroy(): void };
    if (typeof client.resetAndDestroy === 'function') client.resetAndDestroy();
    else client.destroy();
  }

  /** @internal The delay is over. */
  delayOver(): void {
    this.timer = undefined;
    if (!this.closed) this.proceed();
  }

  private hold(event: ProxyEvent): void {
    this.held = event;
    this.queue = [];
    this.flow.hold(WAIT_REASON);
  }

  /** The held event goes on, then the queue, in order, until one of them must wait again. */
  private proceed(): void {
    const event = this.held!;
    const queued = this.queue!;
    this.held = undefined;
    this.queue = undefined;
    // Released before the events go on: the source resumes a tick later, so none overtakes them.
    this.flow.release(WAIT_REASON);
    this.resume(event);
    for (let i = 0; i < queued.length && !this.closed; i++) {
      if (this.queue) {
        (this.queue as ProxyEvent[]).push(...queued.slice(i));
        return;
      }
      this.handle(queued[i]!);
    }
    if (!this.queue && this.sourceDone && !this.closed) this.sourceEnded();
  }

  /** The source completed and nothing waits: a tunnel's FIN goes through its chain first. */
  private sourceEnded(): void {
    if (this.chain && this.tunnelChain) this.chain.end();
    else this.finish();
  }
}

function delayOver(stage: FaultStage): void {
  stage.delayOver();
}
