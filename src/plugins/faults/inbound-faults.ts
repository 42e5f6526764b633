import type { Subscriber } from 'rxjs';
import type { ConnectionContext } from '../../core/context.js';
import type { ProxyError } from '../../core/errors.js';
import type { Exchange } from '../../core/exchange.js';
import { dataEvent, type ProxyEvent, type RequestHeadEvent } from '../../core/events.js';
import type { FaultPlan } from './fault-set.js';
import { FaultStage, type FaultsHost } from './fault-stage.js';

/**
 * The client → origin side of `faults`: draws each request's faults at its head (a tunnel's at
 * its CONNECT), holds a request for an upstream `delay`, and runs the request body (a tunnel's
 * client bytes) through the byte-stream faults that fired upstream. A request's message end goes
 * on only once the chain gave out all of its body.
 */
export class InboundFaults extends FaultStage {
  /** The plan of the head held by a delay, taken when it goes on. */
  private plan?: FaultPlan;
  /** The request whose body the chain carries. */
  private exchange?: Exchange;
  /** Checks, while a fault's close waits for its request's upstream, whether it has one yet. */
  private waitForUpstream?: NodeJS.Timeout;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    ctx: ConnectionContext,
    host: FaultsHost,
    /** 1, 2, … in the order this plugin instance saw connections: the replayable connection ordinal. */
    private readonly ordinal: number,
  ) {
    super(downstream, ctx, host, ctx.inboundFlow);
  }

  protected handle(event: ProxyEvent): void {
    switch (event.kind) {
      case 'request-head':
        return this.head(event);
      case 'data':
        if (this.chain) return this.chain.data(event.chunk);
        return this.emit(event);
      case 'message-end':
        // A CONNECT's chain stays for the tunnel that follows.
        if (this.tunnelChain) return this.emit(event);
        return this.endBody(event);
      default:
        this.emit(event);
    }
  }

  protected resume(event: ProxyEvent): void {
    if (event.kind === 'request-head') return this.start(event);
    this.dropChain(); // a message end: the body has gone through
    this.emit(event);
  }

  chainData(chunk: Buffer): void {
    this.emit(dataEvent(chunk));
  }

  /**
   * A fault closing the connection (limit-data, timeout) while its request still waits for an
   * upstream (a dial in progress) would drop the bytes it let through along with the request: the
   * close waits until the request has its upstream, and so has been written to it.
   */
  override chainFailed(error: ProxyError): void {
    const exchange = this.exchange;
    if (!exchange || exchange.upstream || exchange.answeredLocally || this.closed) return super.chainFailed(error);
    if (this.waitForUpstream) return;
    this.waitForUpstream = setInterval(() => {
      if (!this.closed && !exchange.upstream && !exchange.answeredLocally) return;
      this.stopWaiting();
      super.chainFailed(error);
    }, UPSTREAM_POLL_MS);
  }

  protected override onFinalize(): void {
    this.stopWaiting();
    super.onFinalize();
  }

  private stopWaiting(): void {
    clearInterval(this.waitForUpstream);
    this.waitForUpstream = undefined;
  }

  private head(event: RequestHeadEvent): void {
    this.dropChain(); // the tunnel chain of a CONNECT that was refused, if any
    const { exchange } = event;
    // A request an earlier plugin answered goes nowhere: nothing to inject into.
    const plan = exchange.answeredLocally ? undefined : this.host.current.draw(this.ordinal, exchange, event.head, this.host.name);
    if (!plan) return this.emit(event);
    if (plan.downstream || plan.downstreamDelayMs > 0 || plan.cutAfterBytes >= 0) this.host.plans.set(exchange, plan);
    this.plan = plan;
    if (plan.upstreamDelayMs > 0) return this.delay(event, plan.upstreamDelayMs);
    this.start(event);
  }

  /** The head goes on; its body (or tunnel) gets the chain of the upstream stream faults. */
  private start(event: RequestHeadEvent): void {
    const plan = this.plan;
    this.plan = undefined;
    // A request answered here (abort, drop) sends its body nowhere.
    this.exchange = event.exchange;
    if (plan?.upstream && !event.exchange.answeredLocally) this.startChain(plan.upstream, event.exchange.isConnect);
    this.emit(event);
  }
}

/** How often a deferred close looks whether its request has an upstream yet, in ms (only while one waits). */
const UPSTREAM_POLL_MS = 5;
