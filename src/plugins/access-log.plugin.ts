import { constants, openSync } from 'node:fs';
import path from 'node:path';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import type { ProxyError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import { getHeader } from '../core/http/head.js';
import { Logger } from '../core/logger.js';
import { PluginBaseDir, PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { ProxyStats } from '../core/stats.js';
import { Throttle } from '../core/throttle.js';
import { LogDestination } from './access-log-destination.js';
import { LineBuffer } from './access-log-lines.js';
import type { AccessRecord } from './access-log-record.js';

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
  private readonly out: LogDestination;
  private disposed = false;
  private readonly flusher: NodeJS.Timeout;
  /** A batch is handed over once it holds this many bytes: BATCH_BYTES, or less under a small cap so that batches fit in it. */
  private readonly batchBytes: number;
  /** Lines not yet handed to the destination, as bytes. */
  private readonly lines: LineBuffer;
  /** One warning a minute about lost records, however often they are lost. */
  private readonly warnings = new Throttle(60_000);
  /** Records lost since the last warning. */
  private unreported = 0;

  constructor(
    @inject(PluginOptions) private readonly options: AccessLogOptions,
    @inject(PluginBaseDir) baseDir: string,
    @inject(ProxyStats) private readonly stats: ProxyStats,
    @inject(Logger) private readonly logger: Logger,
  ) {
    // Opened here, synchronously: a file that cannot be opened stops start-up, and the
    // destination is ready from the first record.
    const fd = options.path === undefined ? 1 : openSync(path.resolve(baseDir, options.path), OPEN_FLAGS);
    // Records are batched (batchBytes, or each second) instead of one write per request.
    this.batchBytes = Math.min(BATCH_BYTES, Math.floor(options.maxBufferBytes / 4));
    this.lines = new LineBuffer(this.batchBytes + 16 * 1024);
    this.out = new LogDestination(fd, options.maxBufferBytes, this.onLoss);
    this.flusher = setInterval(() => this.handOver(), 1000);
    this.flusher.unref();
  }

  /** Writes the record of `exchange` (or of the connection, when it failed outside any request). */
  onExchangeEnd(ctx: ConnectionContext, exchange: Exchange | undefined, error?: ProxyError): void {
    if (this.disposed) return;
    const record = accessRecord(ctx, exchange, error);
    if (this.options.format === 'json') this.lines.record(record);
    else this.lines.text(this.clf(record, exchange));
    if (this.lines.size >= this.batchBytes) this.handOver();
  }

  /**
   * Writes out what is waiting and closes the file (stdout stays open). Asynchronous, as a
   * synchronous flush would block the process for good on a full pipe; bounded: what is still
   * unwritten after CLOSE_TIMEOUT_MS is dropped and counted.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearInterval(this.flusher);
    this.handOver();
    await this.out.close(CLOSE_TIMEOUT_MS);
    if (this.unreported > 0) this.warnLoss('reported at shutdown');
  }

  /** Gives the batch to the destination, which writes it asynchronously, in order. */
  private handOver(): void {
    const bytes = this.lines.take();
    if (bytes) this.out.write(bytes);
  }

  /** Counts lost records, and warns once a minute at most. */
  private readonly onLoss = (records: number, cause: string): void => {
    this.stats.logDropped += records;
    this.unreported += records;
    if (this.warnings.take() !== undefined) this.warnLoss(CAUSES[cause] ?? `write error ${cause}`);
  };

  private warnLoss(why: string): void {
    this.logger.warn(`access-log: ${this.unreported} records dropped since the last warning (${why})`, {
      path: this.options.path ?? 'stdout',
      dropped: this.unreported,
      droppedTotal: this.stats.logDropped,
    });
    this.unreported = 0;
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

/**
 * Append, create, and non-blocking: a FIFO or pipe that nobody reads then answers EAGAIN (retried
 * every 100 ms) instead of blocking a libuv thread-pool thread in write(2) for good, which would
 * also keep the process from exiting (libuv joins its threads at exit). A FIFO without a reader
 * fails start-up (ENXIO) instead of blocking it. No effect on regular files.
 */
const OPEN_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;

/** How long dispose waits for the destination to take what is waiting. */
const CLOSE_TIMEOUT_MS = 2000;

/** Why records were lost, by LogDestination's cause. */
const CAUSES: Record<string, string> = {
  full: 'the destination cannot keep up: maxBufferBytes are waiting',
  timeout: 'not written when shutdown stopped waiting',
  closed: 'written after close',
};

/**
 * A batch is written once it holds this many bytes (about 250 JSON records), or each second.
 * Each asynchronous write costs about 50 µs of CPU on top of the write itself (the hand-over to
 * libuv's thread pool and back): about 0.2 µs per record at this size, 0.8 µs at 16 KiB.
 */
const BATCH_BYTES = 64 * 1024;

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
    connectMs: ms(exchange?.timings.connected, startedAt),
    firstByteMs: ms(exchange?.timings.firstByte, startedAt),
    totalMs: ms(exchange?.timings.ended ?? performance.now(), startedAt)!,
    reused: exchange?.reused ?? false,
  };
  if (exchange?.answeredBy) record.answeredBy = exchange.answeredBy;
  if (failure) record.error = failure.code;
  if (exchange?.faults?.length) record.faults = exchange.faults.map((fault) => fault.name);
  return record;
}

/** The last second formatted, since most records of a busy proxy share it with the one before. */
let isoSecond = -1;
let isoPrefix = '';

/** `2026-11-26T15:40:02.123Z` from epoch milliseconds, as `Date#toISOString` gives it. */
export function isoTime(epochMs: number): string {
  const ms = Math.floor(epochMs);
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // up to and including the '.'
  }
  const millis = ms - second * 1000;
  return `${isoPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}

/** Milliseconds from `start` to `mark`, with one decimal; null when the mark was never reached. */
function ms(mark: number | undefined, start: number): number | null {
  return mark === undefined ? null : Math.round((mark - start) * 10) / 10;
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
