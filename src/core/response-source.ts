import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Observable, type Subscriber } from 'rxjs';
import type { ConnectionContext } from './context.js';
import { aborted, ProxyError, toProxyError } from './errors.js';
import { dataEvent, messageEndEvent, responseHeadEvent, type ProxyEvent } from './events.js';
import type { FlowControl } from './flow-control.js';
import { Exchange } from './exchange.js';
import { hasHeaderToken } from './http/head.js';
import { checkLocalReply } from './local-reply.js';
import type { ResponseHead } from './http/response-framing.js';
import { ResponseParser, type ResponseParserEvent } from './http/response-parser.js';
import { errorResponseParts } from './respond.js';
import { setOwner, type SocketOwner } from './socket-owner.js';
import { guardErrors } from './source.js';
import { Watchdog, type Watched } from './watchdog.js';

/** Methods a proxy may send again after a connection failure (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const ESTABLISHED: ResponseHead = { version: '1.1', status: 200, reason: 'Connection Established', headers: [] };

function setNoDelay(socket: Duplex): void {
  (socket as Partial<Pick<Socket, 'setNoDelay'>>).setNoDelay?.(true);
}

/** Whether the upstream may keep the connection open after this response (RFC 9112 §9.3). */
function upstreamKeepsAlive(head: ResponseHead): boolean {
  return head.version === '1.1' ? !hasHeaderToken(head.headers, 'connection', 'close') : hasHeaderToken(head.headers, 'connection', 'keep-alive');
}

/** What the response side asks of its connection. */
export interface ResponseSourceOwner {
  /** Whether a request is arriving or on its way down the chain (not yet queued here). */
  requestsPending(): boolean;
  /** Nothing more may be forwarded upstream: the connection closes after the responses due. */
  stopForwarding(): void;
  /** A watchdog timeout that fails the whole connection (an idle tunnel, a stalled response body). */
  timedOut(error: ProxyError): void;
}

/** Whether something other than a full sink (a peer's backpressure) holds `flow`: a plugin of ours. */
function heldByProxy(flow: FlowControl): boolean {
  return flow.paused && flow.held().some((reason) => reason !== 'sink');
}

/** A failure to close the connection with, after the responses due, without an answer of its own. */
class CloseWith {
  constructor(readonly error: ProxyError) {}
}

/** The request of the stand-in exchange answered for a failure outside any request. */
const NO_REQUEST = { method: '-', target: '-', version: '1.1' as const, headers: [] };

/**
 * The outbound source of a client connection: reads the response of each exchange, one upstream
 * after the other in request order (pipelined requests wait their turn in their upstream's
 * buffers), parses it strictly and emits it as events. Errors of a request that has no response
 * yet become an error response in its place: a refused dial or request (a plugin's refusal or
 * its own answer keeps the connection open), a malformed or missing response (the client
 * connection closes after it). When a response ends, its upstream goes back to whoever supplied
 * it, reusable only if nothing about it is in doubt. A {@link Watchdog} bounds the upstream's
 * phases.
 */
export class ResponseSource implements SocketOwner, Watched {
  readonly events: Observable<ProxyEvent>;
  /** Grows with each chunk read from an upstream or forwarded to a tunnel's (the watchdog's measure). */
  activity = 0;
  private subscriber?: Subscriber<ProxyEvent>;
  private readonly queue: (Exchange | ProxyError | CloseWith)[] = [];
  private current?: Exchange;
  /** The parser of the response being read (none for a CONNECT tunnel). */
  private parser?: ResponseParser;
  /** The last parser, kept for the next response. */
  private spareParser?: ResponseParser;
  private socket?: Duplex;
  private headSent = false;
  private responseEnded = false;
  private closing = false;
  private tunnel = false;
  private dechunk = false;
  private completed = false;
  /** The current exchange's own answer waits for the client to take the responses before it. */
  private replyWaiting = false;
  /** Stands in for an upstream as the outbound flow's source while a reply waits (made when first needed). */
  private replyGate?: ReplyGate;
  /** A graceful shutdown began: the last response due closes the connection. */
  private draining = false;
  /** Created with the first exchange that waits on an upstream. */
  private watchdog?: Watchdog;
  /**
   * The exchange whose own refusal closed the connection without an answer (its `error` has no
   * status): the end hooks report it, though no response of it went out.
   */
  closedBy?: Exchange;

  constructor(
    private readonly ctx: ConnectionContext,
    private readonly maxHeaderBytes: number,
    private readonly owner: ResponseSourceOwner,
  ) {
    this.events = new Observable<ProxyEvent>((subscriber) => {
      this.subscriber = subscriber;
      this.advance();
      // Torn down before it completed: the connection is going away. After completion the
      // upstreams were handed back, or a half-closed tunnel still needs its upstream.
      return () => {
        if (!this.completed) this.destroyAll();
      };
    });
  }

  /** True while the connection is a tunnel (after a CONNECT's 200 or a 101). */
  get isTunnel(): boolean {
    return this.tunnel;
  }

  /** A request went upstream (or failed before): its response comes after those before it. */
  enqueue(exchange: Exchange): void {
    // The usual case, nothing waiting: no queue entry (an idle tunnel would keep its grown array).
    if (this.subscriber && !this.current && this.queue.length === 0) return this.start(exchange);
    this.queue.push(exchange);
    this.advance();
  }

  /** The inbound side failed: answer with this error after the responses already due. */
  fail(error: unknown): void {
    this.queue.push(toProxyError(error));
    this.advance();
  }

  /** The client sent FIN: finish the responses due, then complete (the client is ended). */
  clientEnded(): void {
    this.closing = true;
    this.advance();
  }

  /** @internal (Watched) */
  get watchedExchange(): Exchange | undefined {
    return this.current;
  }

  /** @internal (Watched) */
  get heldByProxy(): boolean {
    return heldByProxy(this.ctx.outboundFlow) || (this.tunnel && heldByProxy(this.ctx.inboundFlow));
  }

  /** @internal (Watched) */
  get responseHeadSent(): boolean {
    return this.headSent;
  }

  /** @internal (Watched) */
  timedOut(error: ProxyError): void {
    if (this.completed || this.subscriber?.closed) return this.owner.timedOut(error);
    // A reply waiting for a client that reads nothing: the client stalled, not an upstream.
    if (error.code !== 'ERR_PROXY_RESPONSE_TIMEOUT' || this.replyWaiting) return this.owner.timedOut(error);
    // No response head yet: the client is answered 504 in its place, and may go on.
    const exchange = this.current!;
    this.detach()?.destroy();
    this.answer(errorResponseParts(error, false), exchange, error);
  }

  /**
   * A graceful shutdown began: the response that is last when its head goes out says
   * `Connection: close`, and the connection closes once the last response due has ended.
   * Returns true when there is nothing to wait for (the caller closes the connection now).
   */
  drain(): boolean {
    this.draining = true;
    if (this.tunnel) return false; // runs until the grace period ends
    if (this.current || this.queue.length > 0) {
      if (this.current && this.headSent && this.isLast()) this.current.closeClient = true;
      return false;
    }
    return !this.owner.requestsPending();
  }

  /** Whether no other request is queued or on its way; when so, the next thing to do is close. */
  private isLast(): boolean {
    if (this.queue.length > 0 || this.owner.requestsPending()) return false;
    this.owner.stopForwarding();
    return true;
  }

  /** The tunnel's upstream, once the connection became a tunnel. */
  get tunnelUpstream(): Duplex | undefined {
    return this.tunnel ? this.current?.upstream : undefined;
  }

  /**
   * A request failed while it was still arriving (a timeout, a malformed chunk, the client gone):
   * it is answered with `error` if none of its response went out, else the client closes. The
   * responses due before it are relayed first.
   */
  requestFailed(exchange: Exchange, error: unknown): void {
    const failure = toProxyError(error);
    if (exchange === this.current) {
      if (this.headSent) return void this.subscriber?.error(failure);
      this.detach()?.destroy();
      exchange.closeClient = true;
      return this.answerError(failure, exchange);
    }
    if (this.queue.includes(exchange)) {
      exchange.upstream?.destroy();
      exchange.closeClient = true;
      // A refusal still answers as refused; anything else answers with the failure.
      if (!exchange.answeredLocally) exchange.error = failure;
      return;
    }
    if (!exchange.response) return this.fail(failure);
    // Already answered (in place while its body was dropped, or early by its origin): nothing
    // more to say; the connection closes, with this failure as the reason.
    this.queue.push(new CloseWith(failure));
    this.advance();
  }

  /**
   * The client connection closed: the watchdog stops. Its timer would otherwise hold the whole
   * connection until its next tick (a quarter of the tunnel idle limit: 15 minutes by default)
   * when a tunnel ended cleanly both ways, the one close that destroys nothing.
   */
  closed(): void {
    this.watchdog?.stop();
  }

  /** Destroys every upstream this source still holds (the connection is going away). */
  destroyAll(): void {
    this.watchdog?.stop();
    this.detach();
    this.current?.upstream?.destroy();
    for (const item of this.queue.splice(0)) if (item instanceof Exchange) item.upstream?.destroy();
  }

  private advance(): void {
    if (!this.subscriber || this.current || this.subscriber.closed) return;
    const next = this.queue.shift();
    if (!next) {
      if (this.closing) this.complete();
      return;
    }
    if (next instanceof ProxyError) return this.answerWithError(next, undefined);
    if (next instanceof CloseWith) return void this.subscriber.error(next.error);
    this.start(next);
  }

  private start(next: Exchange): void {
    this.current = next;
    if (next.answeredLocally) {
      next.upstream?.destroy();
      // An answer made here costs the client nothing to ask for: while the client does not take
      // the responses already sent (its socket is full), the next is not made, or a pipelining
      // client that never reads would make the proxy buffer without bound.
      if (this.ctx.outboundFlow.paused) return this.waitForClient();
      return this.answerLocally(next);
    }
    const socket = next.upstream!;
    this.headSent = false;
    this.responseEnded = false;
    if (next.isConnect) {
      this.becomeTunnel(socket);
      next.response = ESTABLISHED;
      this.headSent = true;
      this.subscriber!.next(responseHeadEvent(ESTABLISHED, next));
      next.decideUpgrade(true);
    } else {
      this.dechunk = next.request.version === '1.0';
      const options = {
        maxHeaderBytes: this.maxHeaderBytes,
        requestMethod: next.request.method,
        upgradeRequested: next.upgradeRequested,
        dechunk: this.dechunk,
      };
      if (this.spareParser) this.spareParser.reset(options);
      this.parser = this.spareParser ?? new ResponseParser(options, (event) => this.parsed(event));
      this.spareParser = undefined;
    }
    this.attach(socket);
    (this.watchdog ??= new Watchdog(this)).watch();
  }

  /**
   * From here on bytes are relayed as they come, and a tunnel may carry an interactive protocol
   * whose small writes Nagle's algorithm would hold back: turn it off on both sockets.
   */
  private becomeTunnel(upstream: Duplex): void {
    this.tunnel = true;
    setNoDelay(upstream);
    setNoDelay(this.ctx.client);
  }

  private attach(socket: Duplex): void {
    // A pipelined request's upstream may have gone while it waited its turn: its 'close' is past.
    if (socket.destroyed) return this.upstreamFailed(aborted('upstream connection closed'));
    this.socket = socket;
    setOwner(socket, this);
    this.ctx.outboundFlow.retarget(socket);
  }

  /** Stops reading `socket` for this connection; whoever gets it next (the pool) reads it. */
  private detach(): Duplex | undefined {
    const socket = this.socket;
    if (!socket) return undefined;
    setOwner(socket, undefined);
    this.ctx.outboundFlow.retarget(undefined);
    this.socket = undefined;
    return socket;
  }

  /** @internal (SocketOwner) */
  ownedData(_socket: Duplex, chunk: Buffer): void {
    this.read(chunk);
  }

  /** @internal (SocketOwner) */
  ownedEnd(): void {
    this.upstreamEnded();
  }

  /** @internal (SocketOwner) */
  ownedClose(): void {
    this.upstreamFailed(aborted('upstream connection closed'));
  }

  private read(chunk: Buffer): void {
    const exchange = this.current!;
    this.activity++;
    exchange.timings.firstByte ??= performance.now();
    if (!this.parser) return void this.subscriber!.next(dataEvent(chunk)); // CONNECT tunnel
    let consumed: number;
    try {
      consumed = this.parser.push(chunk);
    } catch (error) {
      return this.upstreamFailed(error);
    }
    // A stage may have ended the chain while the parser emitted (a fault cutting the response, a
    // failure): the upstream was let go then, and there is nothing left to finish.
    if (this.responseEnded && this.socket) this.finishResponse(consumed < chunk.length);
  }

  private parsed(event: ResponseParserEvent): void {
    const exchange = this.current!;
    const subscriber = this.subscriber!;
    switch (event.kind) {
      case 'response-head': {
        let { head } = event;
        if (!event.interim) {
          this.headSent = true;
          if (exchange.upgradeRequested) exchange.decideUpgrade(event.framing.kind === 'tunnel');
          if (event.framing.kind === 'tunnel') this.becomeTunnel(exchange.upstream!);
          // A close-delimited body can only end by closing the client connection too.
          if (event.framing.kind === 'close') exchange.closeClient = true;
          if (this.dechunk && event.framing.kind === 'chunked') {
            // An HTTP/1.0 client cannot read chunked framing: it gets the payload, close-delimited.
            head = { ...head, headers: head.headers.filter(([name]) => name.toLowerCase() !== 'transfer-encoding') };
            exchange.closeClient = true;
          }
          if (this.draining && !this.tunnel && this.isLast()) exchange.closeClient = true;
          exchange.response = head;
        }
        subscriber.next(responseHeadEvent(head, exchange));
        return;
      }
      case 'data':
        subscriber.next(dataEvent(event.chunk));
        return;
      case 'message-end':
        // After a 101 the "message" is a tunnel that ends with the connection.
        if (!this.tunnel) this.responseEnded = true;
    }
  }

  private finishResponse(extraBytes: boolean): void {
    const exchange = this.current!;
    const socket = this.detach()!;
    const response = exchange.response!;
    const reusable = !extraBytes && exchange.requestSent && upstreamKeepsAlive(response) && !socket.destroyed && !socket.readableEnded;
    exchange.timings.ended = performance.now();
    exchange.replay = undefined;
    this.release(exchange, socket, reusable);
    this.current = undefined;
    this.spareParser = this.parser; // it read this response to its end: the next one can reuse it
    this.parser = undefined;
    this.ctx.exchangeEnded();
    this.subscriber!.next(messageEndEvent(exchange));
    if (exchange.closeClient || (this.draining && this.isLast())) return this.closeAfterThis();
    this.advance();
  }

  private release(exchange: Exchange, socket: Duplex, reusable: boolean): void {
    if (exchange.release) exchange.release(socket, reusable);
    else socket.destroy();
  }

  private upstreamEnded(): void {
    if (this.tunnel) {
      this.detach();
      this.complete(); // a FIN from the upstream: half-close towards the client
      return;
    }
    try {
      this.parser!.end();
    } catch (error) {
      return this.upstreamFailed(error);
    }
    if (this.responseEnded && this.socket) this.finishResponse(true);
  }

  private upstreamFailed(error: unknown): void {
    const exchange = this.current!;
    const socket = this.detach();
    socket?.destroy();
    if (this.canRetry(exchange)) return this.retry(exchange);
    if (this.headSent) {
      this.subscriber?.error(error); // the response has begun: nothing to do but close abruptly
      return;
    }
    const failure = toProxyError(error);
    const answer =
      failure.code === 'ERR_PROXY_BAD_RESPONSE'
        ? failure
        : new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `upstream failed before responding: ${failure.message}`);
    exchange.closeClient = true; // what the upstream did with the request is unknown
    this.answerError(answer, exchange);
  }

  /**
   * A pooled upstream that closed before a byte of response most likely timed out idle just as
   * the request arrived: an idempotent request without a body is sent again, once, on a fresh
   * connection (RFC 9110 §9.2.2).
   */
  private canRetry(exchange: Exchange): boolean {
    return (
      !this.headSent &&
      !this.parser?.started &&
      exchange.reused &&
      exchange.requestSent &&
      !!exchange.replay &&
      !!exchange.redial &&
      IDEMPOTENT.has(exchange.request.method)
    );
  }

  private retry(exchange: Exchange): void {
    const replay = exchange.replay!;
    exchange.replay = undefined;
    exchange.redial!((error, socket) => {
      if (this.completed || this.subscriber?.closed || this.current !== exchange) return void socket?.destroy();
      if (error || !socket) {
        exchange.closeClient = true;
        return this.answerError(toProxyError(error), exchange);
      }
      guardErrors(socket);
      socket.write(replay);
      this.start(exchange);
    });
  }

  /** Answers a failure outside any request (queued by `fail`), then closes the client. */
  private answerWithError(error: ProxyError, exchange: Exchange | undefined): void {
    const answered = exchange ?? new Exchange(0, NO_REQUEST);
    answered.closeClient = true;
    this.answerError(error, answered);
  }

  /** Answers `exchange` with `error` in place of a response (an error without a status closes at once). */
  private answerError(error: ProxyError, exchange: Exchange): void {
    if (error.status === 0) return void this.subscriber!.error(error);
    this.answer(errorResponseParts(error, false), exchange, error);
  }

  /** Holds the current exchange's own answer until the outbound flow is released (the client drained). */
  private waitForClient(): void {
    this.headSent = false;
    this.replyWaiting = true;
    this.ctx.outboundFlow.retarget((this.replyGate ??= new ReplyGate(this)));
    // A client that takes nothing for as long as an upstream may stay silent is given up on.
    (this.watchdog ??= new Watchdog(this)).watch();
  }

  /** @internal (ReplyGate) The client drained: the reply that waited goes out. */
  clientReady(): void {
    if (!this.replyWaiting || this.completed || !this.subscriber || this.subscriber.closed) return;
    this.answerLocally(this.current!);
  }

  /** The refusal or the plugin's own response of an exchange that goes to no upstream. */
  private answerLocally(exchange: Exchange): void {
    if (exchange.reply) {
      let reply;
      try {
        reply = checkLocalReply(exchange.reply);
      } catch (error) {
        return this.answerError(toProxyError(error), exchange);
      }
      // A reply that says it closes the connection does: the client will not send more on it.
      if (hasHeaderToken(reply.head.headers, 'connection', 'close')) exchange.closeClient = true;
      return this.answer(reply, exchange, undefined);
    }
    // An error without a status (a plugin that drops the request) closes the connection with it.
    if (exchange.error!.status === 0) this.closedBy = exchange;
    this.answerError(exchange.error!, exchange);
  }

  /**
   * Emits a response made here in the place of `exchange`'s: the connection goes on to the next
   * request unless the exchange closes the client (a failure, a request that asked to close, a
   * refused body too large to drop). A HEAD request gets the head alone.
   */
  private answer(response: { head: ResponseHead; body: Buffer }, exchange: Exchange, error: ProxyError | undefined): void {
    const subscriber = this.subscriber!;
    const { head, body } = response;
    if (this.replyWaiting) {
      this.replyWaiting = false;
      this.ctx.outboundFlow.retarget(undefined);
    }
    if (error) exchange.error = error;
    exchange.response = head;
    exchange.decideUpgrade(false);
    if (this.draining && this.isLast()) exchange.closeClient = true;
    this.current = exchange;
    subscriber.next(responseHeadEvent(head, exchange));
    if (body.length > 0 && exchange.request.method !== 'HEAD') subscriber.next(dataEvent(body));
    subscriber.next(messageEndEvent(exchange));
    this.current = undefined;
    if (exchange.id > 0) this.ctx.exchangeEnded();
    if (exchange.closeClient) return this.closeAfterThis();
    this.advance();
  }

  /** The client connection closes after the response just sent: later requests are dropped. */
  private closeAfterThis(): void {
    this.closing = true;
    for (const item of this.queue.splice(0)) if (item instanceof Exchange) item.upstream?.destroy();
    this.complete();
  }

  private complete(): void {
    this.completed = true;
    this.subscriber?.complete();
  }
}

/** The outbound flow's source while a reply waits: its release (the client drained) sends the reply. */
class ReplyGate {
  constructor(private readonly source: ResponseSource) {}

  pause(): void {}

  resume(): void {
    this.source.clientReady();
  }
}
