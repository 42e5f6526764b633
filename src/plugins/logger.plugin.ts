import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { stateKey, type ConnectionContext } from '../core/context.js';
import type { ProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import { Logger } from '../core/logger.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';

/** Options of `logger`. */
export interface LoggerPluginOptions {
  /** `text`: one human-readable line per connection; `json`: one JSON object per connection. */
  format: 'text' | 'json';
}

/** The first request seen on a connection, as the logger saw it. */
const FirstRequest = stateKey<{ method: string; target: string }>('logger.first-request');

/**
 * Logs one record per connection when it closes: client, method and target, mode, bytes each
 * way (from byte-counter), duration and the error code if it failed.
 */
@injectable()
export class LoggerPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'logger',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        format: { enum: ['text', 'json'], default: 'text', description: 'text: one line per connection; json: one object.' },
      },
    },
  };
  readonly name = LoggerPlugin.manifest.name;

  constructor(
    @inject(PluginOptions) private readonly options: LoggerPluginOptions,
    @inject(Logger) private readonly logger: Logger,
  ) {}

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return tap((event) => {
      if (event.kind === 'request-head' && !ctx.get(FirstRequest)) {
        ctx.set(FirstRequest, { method: event.head.method, target: event.head.target });
      }
    });
  }

  onClose(ctx: ConnectionContext, error?: ProxyError): void {
    const request = ctx.get(FirstRequest);
    const record = {
      id: ctx.id,
      client: `${ctx.clientAddress.address}:${ctx.clientAddress.port}`,
      method: request?.method ?? (ctx.mode === 'tunnel' ? 'CONNECT' : undefined),
      target: ctx.target ? `${ctx.target.host}:${ctx.target.port}` : undefined,
      path: ctx.mode === 'http' ? request?.target : undefined,
      mode: ctx.mode,
      bytesIn: ctx.bytes.inbound,
      bytesOut: ctx.bytes.outbound,
      durationMs: Math.round(performance.now() - ctx.startedAt),
      error: error?.code,
      reason: error?.message,
    };
    if (this.options.format === 'json') {
      this.logger.info('connection', record);
      return;
    }
    const what = [record.method, record.target, record.path].filter(Boolean).join(' ') || '-';
    const failed = error ? ` ${error.code} (${error.message})` : '';
    this.logger.info(
      `#${record.id} ${record.client} ${what} ${record.mode} in=${record.bytesIn} out=${record.bytesOut} ${record.durationMs}ms${failed}`,
    );
  }
}
