import type { Duplex } from 'node:stream';
import { filter, type Subscription } from 'rxjs';
import { ConnectionContext, type ContextOwner } from './context.js';
import { ProxyError, toProxyError } from './errors.js';
import { FlowControl } from './flow-control.js';
import type { Logger } from './logger.js';
import { compose, encodeEvents, inboundStages, outboundStages } from './pipeline.js';
import type { ProxyPlugin } from './plugin.js';
import { lingeringClose, sendError } from './respond.js';
import { fromReadable } from './source.js';
import { toWritable } from './sink.js';
import type { PeerAddress } from '../transports/listener.js';

const notEmpty = filter((chunk: Buffer) => chunk.length > 0);

/** The upstream failed before sending a byte of response: the client gets a 502. */
const upstreamGone = (what: string) =>
  new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `upstream failed before responding: ${what}`);

/**
 * The life of one accepted socket: builds the inbound chain at once and the outbound chain when
 * a plugin attaches the upstream, splices both to the sockets, and ends everything exactly once.
 * Completion is a half-close passed on to the other side; an error answers or destroys both.
 */
export class Connection implements ContextOwner {
  readonly ctx: ConnectionContext;
  private readonly abort = new AbortController();
  private readonly subscriptions: Subscription[] = [];
  private failure?: ProxyError;
  private closed = false;
  private outboundDone = false;

  constructor(
    id: number,
    private readonly client: Duplex,
    peer: PeerAddress,
    private readonly plugins: readonly ProxyPlugin[],
    private readonly logger: Logger,
    private readonly onClosed: (connection: Connection) => void,
  ) {
    this.ctx = new ConnectionContext(id, client, peer, performance.now(), this.abort.signal, this);
  }

  start(): void {
    const { client, ctx } = this;
    client.on('error', () => {}); // reported through the source; never an unhandled 'error' event
    client.on('close', () => this.onClientClosed());
    let stages;
    try {
      stages = inboundStages(this.plugins, ctx);
    } catch (error) {
      this.fail(error); // a plugin that throws while building fails this connection, not the process
      return;
    }
    this.subscriptions.push(
      compose(fromReadable(client, 'client'), stages)
        .pipe(encodeEvents, notEmpty)
        .subscribe({
          next: (chunk) => this.writeUpstream(chunk),
          complete: () => this.inboundComplete(),
          error: (error) => this.fail(error),
        }),
    );
    if (!ctx.inboundFlow.paused && !this.failure) client.resume();
  }

  /** Stops the connection at once (used at the end of a graceful shutdown). */
  destroy(): void {
    this.fail(new ProxyError('ERR_PROXY_ABORTED', 'proxy shutting down'));
  }

  private upstreamSink?: { next(chunk: Buffer): void; complete(): void };

  attachUpstream(ctx: ConnectionContext, socket: Duplex): void {
    if (ctx.upstream) throw new ProxyError('ERR_PROXY_INTERNAL', 'upstream attached twice');
    ctx.upstream = socket;
    socket.on('error', () => {});
    socket.on('close', () => this.onUpstreamClosed());
    if (this.failure || this.client.destroyed) {
      socket.destroy();
      return;
    }
    ctx.outboundFlow = new FlowControl(socket);
    this.upstreamSink = toWritable(socket, ctx.inboundFlow, {
      onComplete: () => {},
      onError: (error) => this.fail(error),
    });
    const clientSink = toWritable(this.client, ctx.outboundFlow, {
      onWrite: () => (ctx.responseStarted = true),
      onComplete: () => this.outboundComplete(),
      onError: (error) => this.fail(error),
    });
    this.subscriptions.push(
      compose(fromReadable(socket, 'upstream'), outboundStages(this.plugins, ctx))
        .pipe(encodeEvents, notEmpty)
        .subscribe({
          next: (chunk) => clientSink.next(chunk),
          // Before the first response byte the client can still be told what went wrong.
          complete: () => (ctx.responseStarted ? clientSink.complete() : this.fail(upstreamGone('closed the connection'))),
          error: (error) => this.fail(ctx.responseStarted ? error : upstreamGone(toProxyError(error).message)),
        }),
    );
    if (!ctx.outboundFlow.paused && !this.failure) socket.resume();
  }

  private writeUpstream(chunk: Buffer): void {
    if (!this.upstreamSink) {
      throw new ProxyError('ERR_PROXY_INTERNAL', 'data reached the end of the chain before an upstream was attached');
    }
    this.upstreamSink.next(chunk);
  }

  private inboundComplete(): void {
    if (this.upstreamSink) this.upstreamSink.complete();
    else if (!this.client.writableEnded) this.client.end(); // FIN before any request: close politely
  }

  private outboundComplete(): void {
    this.outboundDone = true;
    // A tunnel stays half-open for the client's direction; a plain HTTP exchange is over.
    if (this.ctx.mode !== 'tunnel') lingeringClose(this.client);
  }

  /** Answers or destroys, once; a later failure (e.g. the echo of a destroy) is ignored. */
  private fail(error: unknown): void {
    if (this.failure || this.closed) return;
    const failure = toProxyError(error);
    this.failure = failure;
    if (failure.code === 'ERR_PROXY_INTERNAL') {
      this.logger.error(`connection #${this.ctx.id} internal error`, { message: failure.message, stack: failure.stack });
    }
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.ctx.upstream?.destroy();
    sendError(this.client, failure, this.ctx.responseStarted);
  }

  private onClientClosed(): void {
    const upstream = this.ctx.upstream;
    // Only when both directions ended cleanly is the upstream left to flush what it was given
    // (then it closes by itself); otherwise what it sends has nowhere to go.
    if (upstream && !(upstream.writableEnded && this.outboundDone)) upstream.destroy();
    if (!upstream || upstream.destroyed) this.finish();
  }

  private onUpstreamClosed(): void {
    if (this.client.destroyed) this.finish();
  }

  /** Runs once, when every socket of the connection has closed. */
  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.abort.abort();
    for (const plugin of this.plugins) {
      try {
        plugin.onClose?.(this.ctx, this.failure);
      } catch (error) {
        this.logger.error(`plugin ${plugin.name} failed in onClose`, { message: String(error) });
      }
    }
    this.onClosed(this);
  }
}
