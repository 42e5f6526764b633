import type { Duplex } from 'node:stream';
import { ConnectionContext } from './context.js';
import type { ClientDialect } from './dialect.js';
import { ProxyError, toProxyError } from './errors.js';
import type { Exchange } from './exchange.js';
import type { Logger } from './logger.js';
import { inboundStages, outboundStages, subscribeThrough } from './pipeline.js';
import type { ProxyPlugin } from './plugin.js';
import { RequestSink, type RequestSinkOwner } from './request-sink.js';
import { lingeringClose, sendError } from './respond.js';
import { ResponseSource, type ResponseSourceOwner } from './response-source.js';
import { SocketSink, type SinkOwner } from './sink.js';
import { fromReadable, guardErrors } from './source.js';
import type { PeerAddress } from './transport.js';

/** Why a request that got no response ended, when the connection closed without a failure of its own. */
const ABANDONED = new ProxyError('ERR_PROXY_ABORTED', 'the connection closed before the response');

/** Largest response head accepted from an upstream. */
const MAX_RESPONSE_HEAD = 64 * 1024;

/**
 * The life of one accepted socket. Inbound: client bytes → plugins in order → RequestSink, which
 * writes each request to its exchange's upstream. Outbound: ResponseSource (each exchange's
 * response in request order) → plugins in reverse → SocketSink to the client. Completion is a
 * half-close passed on; a request's error becomes its response, in order; anything else destroys.
 */
export class Connection implements RequestSinkOwner, SinkOwner, ResponseSourceOwner {
  readonly ctx: ConnectionContext;
  private readonly responses: ResponseSource;
  private readonly toUpstreams: RequestSink;
  private readonly toClient: SocketSink;
  /** The plugins with an `onExchangeEnd` hook. */
  private readonly ended: readonly ProxyPlugin[];
  private failure?: ProxyError;
  private closed = false;
  private outboundDone = false;
  /** Set by a graceful shutdown: runs `drain()` again (see `requestEnded`). */
  private redrain?: () => void;

  constructor(
    id: number,
    private readonly client: Duplex,
    peer: PeerAddress,
    private readonly plugins: readonly ProxyPlugin[],
    private readonly logger: Logger,
    private readonly onClosed: (connection: Connection) => void,
    /** How the client speaks when not HTTP (a SOCKS5 listener's connections); none for HTTP. */
    private readonly dialect?: ClientDialect,
  ) {
    this.ctx = new ConnectionContext(id, client, peer, performance.now());
    this.responses = new ResponseSource(this.ctx, MAX_RESPONSE_HEAD, this);
    this.toUpstreams = new RequestSink(this.ctx, this.responses, this);
    this.toClient = new SocketSink(this.ctx.outboundFlow, this, client, dialect);
    this.ended = endHooks(plugins);
  }

  start(): void {
    const { client, ctx } = this;
    guardErrors(client);
    client.on('close', () => this.onClientClosed());
    try {
      const inbound = inboundStages(this.plugins, ctx);
      const outbound = outboundStages(this.plugins, ctx);
      subscribeThrough(this.responses.events, outbound, this.toClient);
      subscribeThrough(fromReadable(client, 'client'), inbound, this.toUpstreams);
    } catch (error) {
      this.fail(error); // a plugin that throws while building fails this connection, not the process
      return;
    }
    if (!ctx.inboundFlow.paused && !this.failure) client.resume();
  }

  /**
   * A graceful shutdown begins: a kept-alive connection with no request in progress ends now; a
   * busy one ends after the last response due (which says `Connection: close`); a tunnel runs on
   * until the grace period ends.
   */
  drain(): void {
    if (this.failure || this.closed) return;
    this.redrain ??= () => this.drain();
    if (!this.responses.drain()) return;
    this.toUpstreams.unsubscribe();
    this.responses.clientEnded();
  }

  /** @internal (RequestSinkOwner) */
  requestEnded(): void {
    // Draining, the request that just ended may have been the last one pending, and answered
    // already: in place, while its dial or check still held the client, or early, by its origin.
    // Nothing else would look again, so look once the chain is done with it.
    if (this.redrain) queueMicrotask(this.redrain);
  }

  /** @internal (ResponseSourceOwner) */
  requestsPending(): boolean {
    // A request being read, or held by a stage that waits (a dial, a check): the client flow is
    // held while one is, or the parser is inside a message.
    return this.ctx.receiving || this.ctx.inboundFlow.paused;
  }

  /** @internal (ResponseSourceOwner) */
  stopForwarding(): void {
    this.toUpstreams.stopForwarding();
  }

  /** @internal (ResponseSourceOwner) */
  timedOut(error: ProxyError): void {
    this.fail(error);
  }

  /** Stops the connection at once (used at the end of a graceful shutdown). */
  destroy(): void {
    this.fail(new ProxyError('ERR_PROXY_ABORTED', 'proxy shutting down'));
  }

  inboundEnded(): void {
    const tunnel = this.responses.tunnelUpstream;
    if (!tunnel) return this.responses.clientEnded();
    if (!tunnel.writableEnded) tunnel.end(); // half-close the tunnel
  }

  inboundFailed(error: unknown, last: Exchange | undefined): void {
    if (this.responses.isTunnel) return this.fail(error);
    // A request cut off halfway: answered in its place if its response has not begun; its
    // upstream, left waiting for the rest, is not used again.
    if (last && !last.requestSent) return this.responses.requestFailed(last, error);
    this.responses.fail(error);
  }

  sinkWriting(): void {
    this.ctx.responseStarted = true;
  }

  sinkCompleted(sink: SocketSink): void {
    this.outboundDone = true;
    sink.end();
    // A tunnel stays half-open for the client's direction; an HTTP connection is over.
    if (!this.responses.isTunnel) lingeringClose(this.client);
  }

  sinkResponseEnded(exchange: Exchange): void {
    this.exchangeEnded(exchange);
  }

  sinkFailed(_sink: SocketSink, error: unknown): void {
    this.fail(error);
  }

  /** Destroys or answers once; a later failure (e.g. the echo of a destroy) is ignored. */
  private fail(error: unknown): void {
    if (this.failure || this.closed) return;
    const failure = toProxyError(error);
    this.failure = failure;
    if (failure.code === 'ERR_PROXY_INTERNAL') {
      this.logger.error(`connection #${this.ctx.id} internal error`, { message: failure.message, stack: failure.stack });
    }
    this.toUpstreams.unsubscribe();
    this.toClient.unsubscribe();
    this.responses.destroyAll();
    sendError(this.client, failure, this.ctx.responseStarted, this.dialect);
  }

  private onClientClosed(): void {
    const tunnel = this.responses.tunnelUpstream;
    this.toUpstreams.unsubscribe();
    this.toClient.unsubscribe();
    // A tunnel whose both directions ended cleanly is left to flush what it was given.
    if (!(tunnel && tunnel.writableEnded && this.outboundDone)) this.responses.destroyAll();
    this.finish();
  }

  /** Runs once, when the client connection has closed. */
  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.close();
    this.responses.closed();
    // The request in progress, if any: its response being relayed, the refusal that closed the
    // connection, or one still waiting for its response (the client went away, a fault reset it).
    const waiting = this.responses.watchedExchange;
    const open = this.toClient.relaying ?? this.responses.closedBy ?? (waiting && !waiting.response ? waiting : undefined);
    const failure = this.failure ?? (open && !open.response ? ABANDONED : undefined);
    if (open || failure) this.exchangeEnded(open, failure);
    for (const plugin of this.plugins) {
      try {
        plugin.onClose?.(this.ctx, this.failure);
      } catch (error) {
        this.logger.error(`plugin ${plugin.name} failed in onClose`, { message: String(error) });
      }
    }
    this.onClosed(this);
  }

  private exchangeEnded(exchange: Exchange | undefined, error?: ProxyError): void {
    for (const plugin of this.ended) {
      try {
        plugin.onExchangeEnd!(this.ctx, exchange, error);
      } catch (failure) {
        this.logger.error(`plugin ${plugin.name} failed in onExchangeEnd`, { message: String(failure) });
      }
    }
  }
}

/** The plugins of a chain that have an `onExchangeEnd` hook, found once per chain, not per connection. */
const endHooksOf = new WeakMap<readonly ProxyPlugin[], readonly ProxyPlugin[]>();

function endHooks(plugins: readonly ProxyPlugin[]): readonly ProxyPlugin[] {
  let found = endHooksOf.get(plugins);
  if (!found) endHooksOf.set(plugins, (found = plugins.filter((plugin) => plugin.onExchangeEnd !== undefined)));
  return found;
}
