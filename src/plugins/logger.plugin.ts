import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import type { ProxyError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import { Logger } from '../core/logger.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';

/** Options of `logger`. */
export interface LoggerPluginOptions {
  /** `text`: one human-readable line per record; `json`: one JSON object per record. */
  format: 'text' | 'json';
}

/**
 * Logs one record per HTTP request when its response ends (method, URL, status, bytes each way
 * from byte-counter, timings, the faults that fired), one per tunnel when the connection closes,
 * and one for a connection that failed outside any request (the `onExchangeEnd` hook).
 */
@injectable()
export class LoggerPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'logger',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        format: { enum: ['text', 'json'], default: 'text', description: 'text: one line per record; json: one object.' },
      },
    },
  };
  readonly name = LoggerPlugin.manifest.name;

  constructor(
    @inject(PluginOptions) private readonly options: LoggerPluginOptions,
    @inject(Logger) private readonly logger: Logger,
  ) {}

  onExchangeEnd(ctx: ConnectionContext, exchange: Exchange | undefined, error?: ProxyError): void {
    if (this.options.format === 'json') return this.logger.info('request', this.record(ctx, exchange, error));
    // The text line is built straight from the exchange: it is written once per request, and an
    // intermediate record object per line is garbage the kept-alive path pays for.
    const failure = exchange?.error ?? error;
    const request = exchange?.request;
    const what = request ? `${request.method} ${request.target}` : '-';
    const bytes = exchange ? exchange.bytes : ctx.bytes;
    const duration = Math.round(performance.now() - (exchange?.startedAt ?? ctx.startedAt));
    const by = exchange?.answeredBy ? ` by=${exchange.answeredBy}` : '';
    const failed = failure ? ` ${failure.code} (${failure.message})` : '';
    const faults = exchange?.faults?.length ? ` faults=${exchange.faults.map((fault) => fault.name).join(',')}` : '';
    const { address, port } = ctx.clientAddress;
    this.logger.info(
      `#${ctx.id}.${exchange?.id ?? 0} ${address}:${port} ${what} ${exchange?.response?.status ?? '-'} in=${bytes.inbound} out=${bytes.outbound} ${duration}ms${by}${failed}${faults}`,
    );
  }

  /** The JSON record of an exchange (or of a connection that failed outside any). */
  private record(ctx: ConnectionContext, exchange: Exchange | undefined, error?: ProxyError): Record<string, unknown> {
    const failure = exchange?.error ?? error;
    const target = exchange?.target;
    return {
      id: `${ctx.id}.${exchange?.id ?? 0}`,
      client: `${ctx.clientAddress.address}:${ctx.clientAddress.port}`,
      method: exchange?.request.method,
      url: exchange?.request.target,
      target: target ? `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}` : undefined,
      status: exchange?.response?.status,
      bytesIn: exchange ? exchange.bytes.inbound : ctx.bytes.inbound,
      bytesOut: exchange ? exchange.bytes.outbound : ctx.bytes.outbound,
      reused: exchange?.reused,
      connectMs: ms(exchange?.timings.connected, exchange?.startedAt),
      firstByteMs: ms(exchange?.timings.firstByte, exchange?.startedAt),
      durationMs: Math.round(performance.now() - (exchange?.startedAt ?? ctx.startedAt)),
      answeredBy: exchange?.answeredBy,
      error: failure?.code,
      reason: failure?.message,
      faults: exchange?.faults?.length ? exchange.faults.map((fault) => fault.name) : undefined,
    };
  }
}

function ms(mark: number | undefined, start: number | undefined): number | undefined {
  return mark === undefined || start === undefined ? undefined : Math.round(mark - start);
}
