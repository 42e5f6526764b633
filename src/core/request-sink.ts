import type { Duplex } from 'node:stream';
import { Subscriber } from 'rxjs';
import type { ConnectionContext } from './context.js';
import { ProxyError } from './errors.js';
import type { ProxyEvent } from './events.js';
import type { Exchange } from './exchange.js';
import { serializeRequestHead } from './http/head.js';
import type { ResponseSource } from './response-source.js';
import { HeadCoalescer } from './sink.js';
import { guardErrors } from './source.js';

/** Who the request sink reports to (the connection). */
export interface RequestSinkOwner {
  /** The client sent FIN. */
  inboundEnded(): void;
  /** The inbound chain failed (a malformed request, a plugin's refusal). */
  inboundFailed(error: unknown, last: Exchange | undefined): void;
}

/**
 * The end of the inbound chain: writes each request to the upstream its exchange was given
 * (one client connection may feed many upstreams), queues the exchange for its response, and
 * carries backpressure back to the client: a full upstream holds the client paused (`sink`).
 * A CONNECT head is consumed here; the upstream only ever sees the tunnel bytes.
 */
export class RequestSink extends Subscriber<ProxyEvent> {
  private current?: Exchange;
  /** After a request that closes the connection, or one that failed, nothing more is forwarded. */
  private discarding = false;
  private waitingForDrain = false;
  private readonly onDrain = () => {
    this.waitingForDrain = false;
    this.ctx.inboundFlow.release('sink');
  };

  private readonly heads = new HeadCoalescer((socket, chunk) => this.write(socket as Duplex, chunk));

  constructor(
    private readonly ctx: ConnectionContext,
    private readonly responses: ResponseSource,
    private readonly owner: RequestSinkOwner,
  ) {
    super();
  }

  protected override _next(event: ProxyEvent): void {
    if (this.discarding) return;
    switch (event.kind) {
      case 'request-head': {
        const exchange = event.exchange;
        this.current = exchange;
        this.ctx.exchangeStarted();
        if (!exchange.error && !exchange.upstream) {
          exchange.error = new ProxyError('ERR_PROXY_INTERNAL', 'no plugin attached an upstream to this request');
        }
        if (exchange.upstream) guardErrors(exchange.upstream);
        this.responses.enqueue(exchange);
        if (exchange.error) {
          this.discarding = true;
          return;
        }
        if (!exchange.isConnect) {
          const bytes = serializeRequestHead(event.head);
          // On a pooled upstream the origin may close just as this arrives: keep it to replay.
          if (exchange.reused) exchange.replay = bytes;
          this.heads.hold(exchange.upstream!, bytes); // joined to the body bytes of the same read
        }
        return;
      }
      case 'data':
        if (!this.current?.upstream) return;
        if (this.current.replay) this.current.replay = undefined; // a body is not kept: never replayed
        this.heads.data(this.current.upstream, event.chunk);
        return;
      case 'message-end':
        this.heads.flush();
        event.exchange.requestSent = true;
        if (event.exchange.closeClient) this.discarding = true;
        return;
      case 'response-head':
        this.owner.inboundFailed(new ProxyError('ERR_PROXY_INTERNAL', 'a response head in the inbound chain'), this.current);
    }
  }

  protected override _complete(): void {
    this.heads.flush();
    this.owner.inboundEnded();
    this.unsubscribe();
  }

  protected override _error(error: unknown): void {
    this.owner.inboundFailed(error, this.current);
    this.unsubscribe();
  }

  private write(socket: Duplex, chunk: Buffer): void {
    // A destroyed upstream is reported by the response side, as a 502 in this request's place.
    if (socket.destroyed || chunk.length === 0) return;
    if (!socket.write(chunk) && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.ctx.inboundFlow.hold('sink');
      socket.once('drain', this.onDrain);
    }
  }
}
