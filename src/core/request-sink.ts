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

/**
 * The largest request body read and dropped after a refusal, so the connection can serve the
 * next request; a refused request announcing more (or chunked) closes the connection instead.
 */
export const MAX_DROPPED_BODY = 64 * 1024;

/** Who the request sink reports to (the connection). */
export interface RequestSinkOwner {
  /** The client sent FIN. */
  inboundEnded(): void;
  /** The inbound chain failed (a malformed request, a plugin's refusal). */
  inboundFailed(error: unknown, last: Exchange | undefined): void;
  /** A request has wholly arrived and gone on (or was answered in place). */
  requestEnded(): void;
}

/**
 * The end of the inbound chain: writes each request to the upstream its exchange was given
 * (one client connection may feed many upstreams), queues the exchange for its response, and
 * carries backpressure back to the client: a full upstream holds the client paused (`sink`).
 * A CONNECT head is consumed here; the upstream only ever sees the tunnel bytes.
 */
export class RequestSink extends Subscriber<ProxyEvent> {
  private current?: Exchange;
  /** After a request that closes the connection, nothing more is forwarded. */
  private discarding = false;
  /** The body of a request answered in place (refused, or answered by a plugin) is read and dropped. */
  private dropping = false;
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
    if (this.discarding) {
      // A request read after a drain chose the last response was still routed and given an
      // upstream (from the pool, or a dial); nothing will write to it or give it back.
      if (event.kind === 'request-head') event.exchange.upstream?.destroy();
      return;
    }
    switch (event.kind) {
      case 'request-head': {
        const exchange = event.exchange;
        this.current = exchange;
        this.ctx.exchangeStarted();
        if (!exchange.answeredLocally && !exchange.upstream) {
          exchange.error = new ProxyError('ERR_PROXY_INTERNAL', 'no plugin attached an upstream to this request');
          exchange.closeClient = true;
        }
        if (exchange.upstream) guardErrors(exchange.upstream);
        if (exchange.answeredLocally) {
          // Answered in place; the connection stays open for the next request if the body is
          // small enough to read and drop (a CONNECT has none).
          this.dropping = true;
          const length = exchange.bodyLength;
          if (length < 0 || length > MAX_DROPPED_BODY) exchange.closeClient = true;
        }
        this.responses.enqueue(exchange);
        if (exchange.answeredLocally) return;
        if (!exchange.isConnect) {
          const bytes = serializeRequestHead(event.head);
          // On a pooled upstream the origin may close just as this arrives: keep it to replay.
          if (exchange.reused) exchange.replay = bytes;
          this.heads.hold(exchange.upstream!, bytes); // joined to the body bytes of the same read
        }
        return;
      }
      case 'data':
        if (this.dropping) return;
        this.responses.activity++;
        if (!this.current?.upstream) return;
        if (this.current.replay) this.current.replay = undefined; // a body is not kept: never replayed
        this.heads.data(this.current.upstream, event.chunk);
        return;
      case 'message-end':
        this.heads.flush();
        this.dropping = false;
        event.exchange.requestSent = true;
        // A CONNECT's `Connection: close` closes nothing: once established it is a tunnel.
        if (event.exchange.closeClient && !event.exchange.isConnect) this.discarding = true;
        this.owner.requestEnded();
        return;
      case 'response-head':
        this.owner.inboundFailed(new ProxyError('ERR_PROXY_INTERNAL', 'a response head in the inbound chain'), this.current);
    }
  }

  /** Forwards nothing more: the connection closes after the responses due (a graceful drain). */
  stopForwarding(): void {
    this.discarding = true;
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
