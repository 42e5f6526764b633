import { openSync } from 'node:fs';
import path from 'node:path';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import type { ProxyError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import { getHeader } from '../core/http/head.js';
import { Logger } from '../core/logger.js';
import { PluginBaseDir, PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { ProxyStats } from '../core/stats.js';
import type { AccessRecord } from './access-log-record.js';
import { BatchedLog, OPEN_FLAGS } from './batched-log.js';
import { isoTime, msBetween } from './record-time.js';
import { LogDestination } from './log-destination.js';

export { isoTime };

/** Options of `access-log`. */
export interface AccessLogOptions {
  /** `json`: one JSON object per line; `common`: Common Log Format; `combined`: CLF with referer and user-agent. */
  format: 'json' | 'common' | 'combined';
  /** File the records are appended to (relative to the config file's folder); absent: stdout. */
  path?: string;
  /** Bytes of records that may wait for a destination that cannot keep up; past it records are dropped and counted. */
  maxBufferBytes: number;
}

/**
 * Writes one access-log record per HTTP request when its response ends, one per tunnel
 * (CONNECT, or an upgrade answered 101) when the connection closes, and one for a connection
 * that failed outside any request (the `onExchangeEnd` hook): as JSON lines, or in Common /
 * Combined Log Format. Records go in batches through an asynchronous SonicBoom to a file or stdout,
 * written out on dispose. Memory stays bounded when the destination cannot keep up (a stalled
 * disk, a pipe nobody reads): past `maxBufferBytes` waiting, records are dropped, counted in
 * `ProxyStats.logDropped` and warned about at most once a minute; a write error (EPIPE, ENOSPC)
 * loses what was waiting, counted the same way. Byte counts come from `byte-counter`, wherever it
 * is listed.
 */
@injectable()
export class AccessLogPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'access-log',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        format: {
          enum: ['json', 'common', 'combined'],
          default: 'json',
          description: 'json: one JSON object per line; common: Common Log Format; combined: CLF plus "referer" "user-agent".',
        },
        path: {
          type: 'string',
          minLength: 1,
          description: "File to append records to, relative to the config file's folder; absent: stdout.",
        },
        maxBufferBytes: {
          type: 'integer',
          minimum: 65536,
          default: 16 * 1024 * 1024,
          description:
            'Bytes of records that may wait for a destination that cannot keep up (a stalled disk, a pipe nobody reads); past it, records are dropped and counted (proxyline_log_dropped_total).',
        },
      },
    },
  };
  readonly name = AccessLogPlugin.manifest.name;
  /** Batches the lines, counts and warns about lost ones, closes within a bound. */
  private readonly log: BatchedLog;

  constructor(
    @inject(PluginOptions) private readonly options: AccessLogOptions,
    @inject(PluginBaseDir) baseDir: string,
    @inject(ProxyStats) stats: ProxyStats,
    @inject(Logger) logger: Logger,
  ) {
    // Opened here, synchronously: a file that cannot be opened stops start-up, and the
    // destination is ready from the first record.
    const fd = options.path === undefined ? 1 : openSync(path.resolve(baseDir, options.path), OPEN_FLAGS);
    const { maxBufferBytes } = options;
    this.log = new BatchedLog(
      { name: this.name, where: options.path ?? 'stdout', maxBufferBytes, count: (records) => (stats.logDropped += records), logger },
      (onLoss) => new LogDestination(fd, maxBufferBytes, onLoss),
    );
  }

  /** Writes the record of `exchange` (or of the connection, when it failed outside any request). */
  onExchangeEnd(ctx: ConnectionContext, exchange: Exchange | undefined, error?: ProxyError): void {
    const { log } = this;
    if (log.closed) return;
    const record = accessRecord(ctx, exchange, error);
    if (this.options.format === 'json') log.lines.record(record);
    else log.lines.text(this.clf(record, exchange));
    log.added();
  }

  /** Writes out what is waiting and closes the file (stdout stays open), within a bound (see BatchedLog). */
  dispose(): Promise<void> {
    return this.log.close();
  }

  private clf(record: AccessRecord, exchange: Exchange | undefined): string {
    const request = exchange && record.method ? `${record.method} ${record.target} HTTP/${exchange.request.version}` : '-';
    let line = `${record.client} - ${record.user === null ? '-' : escape(record.user).replaceAll(' ', '\\x20')} [${clfTime(record.time)}] "${escape(request)}" ${record.status ?? '-'} ${record.bytesOut}`;
    if (this.options.format === 'combined') {
      const headers = exchange?.request.headers ?? [];
      line += ` "${escape(getHeader(headers, 'referer') ?? '-')}" "${escape(getHeader(headers, 'user-agent') ?? '-')}"`;
    }
    return line + '\n';
  }
}

/** The record of one exchange, or of a connection that failed outside any request. */
function accessRecord(ctx: ConnectionContext, exchange: Exchange | undefined, error: ProxyError | undefined): AccessRecord {
  const failure = exchange?.error ?? error;
  // The core answers a failure outside any request with a stand-in exchange numbered 0.
  const request = exchange && exchange.id > 0 ? exchange : undefined;
  const startedAt = exchange?.startedAt ?? ctx.startedAt;
  const status = exchange?.response?.status ?? (failure && failure.status > 0 ? failure.status : null);
  const record: AccessRecord = {
    time: isoTime(performance.timeOrigin + startedAt),
    client: ctx.clientAddress.address,
    user: exchange?.user ?? null,
    method: request?.request.method ?? null,
    target: request?.request.target ?? null,
    status,
    bytesIn: exchange ? exchange.bytes.inbound : ctx.bytes.inbound,
    bytesOut: exchange ? exchange.bytes.outbound : ctx.bytes.outbound,
    connectMs: msBetween(startedAt, exchange?.timings.connected),
    firstByteMs: msBetween(startedAt, exchange?.timings.firstByte),
    totalMs: msBetween(startedAt, exchange?.timings.ended ?? performance.now())!,
    reused: exchange?.reused ?? false,
  };
  if (exchange?.answeredBy) record.answeredBy = exchange.answeredBy;
  if (failure) record.error = failure.code;
  if (exchange?.faults?.length) record.faults = exchange.faults.map((fault) => fault.name);
  return record;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** `26/Nov/2026:15:40:02 +0000` (UTC) from an ISO time. */
function clfTime(iso: string): string {
  const d = new Date(iso);
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** Escapes `"`, `\` and control or non-ASCII characters as Apache does (`\"`, `\\`, `\xHH`). */
function escape(text: string): string {
  return text.replace(/["\\]|[^\x20-\x7e]/g, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
