import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { Duplex } from 'node:stream';
import type { ConnectionContext, Target } from '../core/context.js';
import { badRequest, ProxyError, toProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';
import { Dialer } from '../transports/dialer.js';

/** Options of `upstream-dialer`. */
export interface UpstreamDialerOptions {
  /** How long a connect attempt may take, in ms, before the client gets 504. */
  connectTimeoutMs: number;
}

/**
 * Opens the upstream connection for the target an earlier plugin routed to, and attaches it to
 * the connection. While dialling, the client socket is held paused (reason `dial`) and the few
 * events already read wait in a queue that this pause keeps bounded.
 */
@injectable()
export class UpstreamDialerPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'upstream-dialer',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        connectTimeoutMs: { type: 'integer', minimum: 1, default: 10000, description: 'Connect timeout in ms (504 after it).' },
      },
    },
    after: ['head-parser'],
  };
  readonly name = UpstreamDialerPlugin.manifest.name;

  constructor(
    @inject(PluginOptions) private readonly options: UpstreamDialerOptions,
    @inject(Dialer) private readonly dialer: Dialer,
  ) {}

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new DialStage(downstream, ctx, this));
  }

  /**
   * Dials with the connect timeout; calls `done` once with the socket or a ProxyError. Returns a
   * cancel function, valid until `done` runs. The abort machinery lives only while dialling.
   * @internal
   */
  dial(target: Target, done: (error: ProxyError | undefined, socket?: Duplex) => void): () => void {
    const { connectTimeoutMs } = this.options;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(DIAL_TIMEOUT);
    }, connectTimeoutMs);
    this.dialer.dial(target, controller.signal).then(
      (socket) => {
        clearTimeout(timer);
        done(undefined, socket);
      },
      (error: unknown) => {
        clearTimeout(timer);
        const where = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
        done(
          timedOut
            ? new ProxyError('ERR_PROXY_UPSTREAM_TIMEOUT', `connecting to ${where} timed out after ${connectTimeoutMs} ms`)
            : toProxyError(error),
        );
      },
    );
    return () => {
      clearTimeout(timer);
      controller.abort(DIAL_CANCELLED);
    };
  }
}

/** Holds the client paused and queues the events already read while the upstream is dialled. */
class DialStage extends Stage {
  private queue?: ProxyEvent[];
  private sourceDone = false;
  private cancel?: () => void;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
    private readonly plugin: UpstreamDialerPlugin,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (this.queue) return void this.queue.push(event);
    if (this.ctx.upstream) return this.emit(event);
    const { target } = this.ctx;
    if (!target) throw badRequest('no plugin routed this request (is http-forward or connect-handler configured?)');
    this.queue = [event];
    this.ctx.inboundFlow.hold('dial');
    this.cancel = this.plugin.dial(target, (error, socket) => this.dialled(error, socket));
  }

  protected override onComplete(): void {
    if (this.queue) this.sourceDone = true;
    else this.finish();
  }

  protected override onFinalize(): void {
    this.cancel?.();
  }

  private dialled(error: ProxyError | undefined, socket?: Duplex): void {
    this.cancel = undefined;
    if (error) return this.fail(error);
    if (this.closed) return void socket!.destroy();
    this.ctx.attachUpstream(socket!);
    const waiting = this.queue!;
    this.queue = undefined;
    for (const event of waiting) this.emit(event);
    if (this.sourceDone) this.finish();
    this.ctx.inboundFlow.release('dial');
  }
}

/** Shared abort reasons: aborting with a value avoids building a DOMException per dial. */
const DIAL_TIMEOUT = new ProxyError('ERR_PROXY_UPSTREAM_TIMEOUT', 'connect timeout');
const DIAL_CANCELLED = new ProxyError('ERR_PROXY_ABORTED', 'dial cancelled');
