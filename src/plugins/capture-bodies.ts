import type { Subscriber } from 'rxjs';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { Stage } from '../core/stage.js';

/** Up to `max` bytes of one body (or of one direction of a tunnel), copied as they pass. */
export class BodyCapture {
  /** Copies, not the chunks: a few bytes must not keep a 64 KiB read buffer alive. */
  private readonly parts: Buffer[] = [];
  private size = 0;
  private truncated = false;

  constructor(private readonly max: number) {}

  /** Keeps what still fits of `chunk`; notes that the body went on past `max`. */
  add(chunk: Buffer): void {
    const take = Math.min(this.max - this.size, chunk.length);
    if (take < chunk.length) this.truncated = true;
    if (take <= 0) return;
    this.parts.push(Buffer.from(chunk.subarray(0, take)));
    this.size += take;
  }

  /** As a capture record holds it. */
  toRecord(): { base64: string; truncated: boolean } {
    return { base64: Buffer.concat(this.parts, this.size).toString('base64'), truncated: this.truncated };
  }
}

/** The two bodies of one exchange. */
export interface ExchangeBodies {
  /** What the client sent after the request head (after a CONNECT: the tunnel bytes towards the upstream). */
  readonly request: BodyCapture;
  /** What went to the client after the final response head (after a 200 to CONNECT or a 101: the tunnel bytes). */
  readonly response: BodyCapture;
}

/** Where the stages leave each exchange's bodies for `onExchangeEnd`; weak, since an exchange cut off never ends. */
export type BodyStore = WeakMap<Exchange, ExchangeBodies>;

/** Inbound: keeps the request body bytes of each exchange, from its head to the next request's head. */
export class RequestBodyTap extends Stage {
  private current?: BodyCapture;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly store: BodyStore,
    private readonly max: number,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'data') this.current?.add(event.chunk);
    else if (event.kind === 'request-head') {
      let bodies = this.store.get(event.exchange);
      if (!bodies) this.store.set(event.exchange, (bodies = { request: new BodyCapture(this.max), response: new BodyCapture(this.max) }));
      this.current = bodies.request;
    }
    this.emit(event);
  }
}

/** Outbound: keeps the response body bytes of each exchange, from its response head on. */
export class ResponseBodyTap extends Stage {
  private exchange?: Exchange;
  private current?: BodyCapture;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly store: BodyStore,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'data') this.current?.add(event.chunk);
    else if (event.kind === 'response-head' && event.exchange !== this.exchange) {
      // Interim (1xx) heads and the final one share the exchange: its body follows the last.
      this.exchange = event.exchange;
      this.current = this.store.get(event.exchange)?.response;
    }
    this.emit(event);
  }
}
