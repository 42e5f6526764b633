import type { Duplex } from 'node:stream';
import { ConnectionContext, type ContextOwner } from './context.js';
import { ProxyError, toProxyError } from './errors.js';
import { FlowControl } from './flow-control.js';
import type { Logger } from './logger.js';
import { compose, inboundStages, outboundStages } from './pipeline.js';
import type { ProxyPlugin } from './plugin.js';
import { lingeringClose, sendError } from './respond.js';
import { SocketSink, type SinkOwner } from './sink.js';
import { fromReadable } from './source.js';
import type { PeerAddress } from '../transports/listener.js';

/** The upstream failed before sending a byte of response: the client gets a 502. */
const upstreamGone = (what: string) => new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `upstream failed before responding: ${what}`);

/** Listener for sockets whose errors reach us through their sources: never an unhandled 'error'. */
const ignore = () => {};

/**
 * The life of one accepted socket: builds the inbound chain at once and the outbound chain when
 * a plugin attaches the upstream, splices both to the sockets, and ends everything exactly once.
 * Completion is a half-close passed on to the other side; an error answers or destroys both.
 */
export class Connection implements ContextOwner, SinkOwner {
  readonly ctx: ConnectionContext;
  private readonly toUpstream: SocketSink;
  private toClient?: SocketSink;
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
    this.ctx = new ConnectionContext(id, client, peer, performance.now(), this);
    this.toUpstream = new SocketSink(this.ctx.inboundFlow, this);
  }

  start(): void {
    const { client, ctx } = this;
    client.on('error', ignore);
    client.on('close', () => this.onClientClosed());
    let stages;
    try {
      stages = inboundStages(this.plugins, ctx);
    } catch (error) {
      this.fail(error); // a plugin that throws while building fails this connection, not the process
      return;
    }
    compose(fromReadable(client, 'client'), stages).subscribe(this.toUpstream);
    if (!ctx.inboundFlow.paused && !this.failure) client.resume();
  }

  /** Stops the connection at once (used at the end of a graceful shutdown). */
  destroy(): void {
    this.fail(new ProxyError('ERR_PROXY_ABORTED', 'proxy shutting down'));
  }

  attachUpstream(ctx: ConnectionContext, socket: Duplex): void {
    if (ctx.upstream) throw new ProxyError('ERR_PROXY_INTERNAL', 'upstream attached twice');
    ctx.upstream = socket;
    socket.on('error', ignore);
    socket.on('close', () => this.onUpstreamClosed());
    if (this.failure || this.client.destroyed) {
      socket.destroy();
      return;
    }
    ctx.outboundFlow = new FlowControl(socket);
    this.toUpstream.attach(socket);
    this.toClient = new SocketSink(ctx.outboundFlow, this, this.client);
    compose(fromReadable(socket, 'upstream'), outboundStages(this.plugins, ctx)).subscribe(this.toClient);
    if (!ctx.outboundFlow.paused && !this.failure) socket.resume();
  }

  sinkWriting(sink: SocketSink): void {
    if (sink === this.toClient) this.ctx.responseStarted = true;
  }

  sinkCompleted(sink: SocketSink): void {
    if (sink === this.toUpstream) {
      if (this.ctx.upstream) sink.end();
      else if (!this.client.writableEnded) this.client.end(); // FIN before any request: close politely
      return;
    }
    // Before the first response byte the client can still be told what went wrong.
    if (!this.ctx.responseStarted) return this.fail(upstreamGone('closed the connection'));
    sink.end();
    this.outboundDone = true;
    // A tunnel stays half-open for the client's direction; a plain HTTP exchange is over.
    if (this.ctx.mode !== 'tunnel') lingeringClose(this.client);
  }

  sinkFailed(sink: SocketSink, error: unknown): void {
    const fromUpstream = sink === this.toClient && !this.ctx.responseStarted;
    this.fail(fromUpstream ? upstreamGone(toProxyError(error).message) : error);
  }

  /** Answers or destroys, once; a later failure (e.g. the echo of a destroy) is ignored. */
  private fail(error: unknown): void {
    if (this.failure || this.closed) return;
    const failure = toProxyError(error);
    this.failure = failure;
    if (failure.code === 'ERR_PROXY_INTERNAL') {
      this.logger.error(`connection #${this.ctx.id} internal error`, { message: failure.message, stack: failure.stack });
    }
    this.toUpstream.unsubscribe();
    this.toClient?.unsubscribe();
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
    this.toUpstream.unsubscribe();
    this.toClient?.unsubscribe();
    this.ctx.close();
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
