import { ProxyError } from '../../core/errors.js';
import type { Subscriber } from 'rxjs';
import type { ConnectionContext } from '../../core/context.js';
import { dataEvent, messageEndEvent, type DataEvent, type ProxyEvent, type ResponseHeadEvent } from '../../core/events.js';
import type { Exchange } from '../../core/exchange.js';
import type { FaultPlan } from './fault-set.js';
import { FaultStage, type FaultsHost } from './fault-stage.js';

/**
 * The origin → client side of `faults`: applies what the inbound side drew for each exchange when
 * its response arrives (responses come in request order). A downstream `delay` holds the first
 * head of the response; the byte-stream faults that fired downstream run over its body (a
 * tunnel's origin bytes), its message end waiting until they gave out all of it; `cut-response`
 * counts the body bytes that go to the client and ends the connection at its limit.
 */
export class OutboundFaults extends FaultStage {
  /** The exchange whose response is going through. */
  private exchange?: Exchange;
  /** What is left to apply to it; taken at its final head. */
  private plan?: FaultPlan;
  /** Body bytes the client may still get before the cut; -1: no cut. */
  private cutLeft = -1;
  /** Where the cut is, in body bytes (for its error message). */
  private cutAt = 0;

  constructor(downstream: Subscriber<ProxyEvent>, ctx: ConnectionContext, host: FaultsHost) {
    super(downstream, ctx, host, ctx.outboundFlow);
  }

  protected handle(event: ProxyEvent): void {
    switch (event.kind) {
      case 'response-head':
        if (event.exchange !== this.exchange) return this.begin(event);
        return this.head(event);
      case 'data':
        if (this.chain) return this.chain.data(event.chunk);
        return this.output(event);
      case 'message-end':
        if (this.tunnelChain) return this.emit(event);
        return this.endBody(event);
      default:
        this.emit(event);
    }
  }

  protected resume(event: ProxyEvent): void {
    if (event.kind === 'response-head') return this.head(event);
    this.dropChain(); // a message end: the body has gone through
    this.cutLeft = -1;
    this.emit(event);
  }

  chainData(chunk: Buffer): void {
    this.output(dataEvent(chunk));
  }

  /** The first head of an exchange's response: its plan is taken, and may delay it. */
  private begin(event: ResponseHeadEvent): void {
    const { exchange } = event;
    this.exchange = exchange;
    this.dropChain();
    this.cutLeft = -1;
    const plan = this.host.plans.get(exchange);
    this.plan = plan;
    if (!plan) return this.emit(event);
    this.host.plans.delete(exchange);
    if (plan.downstreamDelayMs > 0) return this.delay(event, plan.downstreamDelayMs);
    this.head(event);
  }

  /** A head goes on; at the final one, the body's chain and cut begin. */
  private head(event: ResponseHeadEvent): void {
    const plan = this.plan;
    const { status } = event.head;
    if (plan && (status >= 200 || status === 101)) {
      this.plan = undefined;
      // After a CONNECT's 2xx or a 101 the body is a tunnel: it is never cut, its chain takes the
      // FIN. A refused CONNECT's answer is a response like any other.
      const tunnel = (event.exchange.isConnect && status < 300) || status === 101;
      if (plan.cutAfterBytes >= 0 && !tunnel) this.cutLeft = this.cutAt = plan.cutAfterBytes;
      if (plan.downstream) this.startChain(plan.downstream, tunnel);
    }
    this.emit(event);
  }

  /** A body chunk towards the client; past the cut's limit, what fits goes and the connection ends. */
  private output(event: DataEvent): void {
    const left = this.cutLeft;
    if (left < 0) return this.emit(event);
    const { chunk } = event;
    if (chunk.length <= left) {
      this.cutLeft = left - chunk.length;
      return this.emit(event);
    }
    if (left > 0) this.emit(dataEvent(chunk.subarray(0, left)));
    this.cut();
  }

  /**
   * Ends the response where it is and the connection after it: the client gets the bytes sent so
   * far, then a FIN (its framing tells it the body is short). The upstream is closed as the stage
   * ends.
   */
  private cut(): void {
    const exchange = this.exchange!;
    exchange.closeClient = true;
    // Logs, metrics and captures then show the cut as what it is for the client: a failed response.
    exchange.error = new ProxyError('ERR_PROXY_ABORTED', `fault cut-response: the response body was cut after ${this.cutAt} bytes`);
    this.dropChain();
    this.emit(messageEndEvent(exchange));
    this.finish();
  }
}
