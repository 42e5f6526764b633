import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { badRequest, ProxyError, toProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
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
    return (source) =>
      new Observable<ProxyEvent>((subscriber) => {
        let queue: ProxyEvent[] | undefined;
        let sourceDone = false;
        const cancel = new AbortController();
        let timer: NodeJS.Timeout | undefined;

        const connected = () => {
          const waiting = queue ?? [];
          queue = undefined;
          for (const event of waiting) subscriber.next(event);
          if (sourceDone) subscriber.complete();
          ctx.inboundFlow.release('dial');
        };

        const dial = () => {
          const target = ctx.target;
          if (!target) {
            subscriber.error(badRequest('no plugin routed this request (is http-forward or connect-handler configured?)'));
            return;
          }
          ctx.inboundFlow.hold('dial');
          const { connectTimeoutMs } = this.options;
          const where = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
          let timedOut = false;
          timer = setTimeout(() => {
            timedOut = true;
            cancel.abort();
          }, connectTimeoutMs);
          this.dialer.dial(target, cancel.signal).then(
            (socket) => {
              clearTimeout(timer);
              if (subscriber.closed) return void socket.destroy();
              ctx.attachUpstream(socket);
              connected();
            },
            (error: unknown) => {
              clearTimeout(timer);
              subscriber.error(
                timedOut
                  ? new ProxyError('ERR_PROXY_UPSTREAM_TIMEOUT', `connecting to ${where} timed out after ${connectTimeoutMs} ms`)
                  : toProxyError(error),
              );
            },
          );
        };

        const subscription = source.subscribe({
          next(event) {
            if (queue) return void queue.push(event);
            if (ctx.upstream) return subscriber.next(event);
            queue = [event];
            dial();
          },
          error: (error) => subscriber.error(error),
          complete() {
            if (queue) sourceDone = true;
            else subscriber.complete();
          },
        });
        return () => {
          clearTimeout(timer);
          cancel.abort();
          subscription.unsubscribe();
        };
      });
  }
}
