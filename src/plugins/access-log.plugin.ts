import { openSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import type { ProxyError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import { getHeader } from '../core/http/head.js';
import { PluginBaseDir, PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { LineBuffer } from './access-log-lines.js';

/** Options of `access-log`. */
export interface AccessLogOptions {
  /** `json`: one JSON object per line; `common`: Common Log Format; `combined`: CLF with referer and user-agent. */
  format: 'json' | 'common' | 'combined';
  /** File the records are appended to (relative to the config file's folder); absent: stdout. */
  path?: string;
}

/** One access-log record, as the `json` format writes it. */
export interface AccessRecord {
  /** When the request head arrived (ISO 8601). */
  time: string;
  /** Client IP address. */
  client: string;
  /** The authenticated proxy user, or null. */
  user: string | null;
  /** Request method; null for a failure outside any request. */
  method: string | null;
  /** The request target as the client sent it (absolute URL, or host:port for CONNECT). */
  target: string | null;
  /** The final response status (the error's status when the proxy answered); null when none was sent. */
  status: number | null;
  /** Bytes towards the upstream and towards the client, as counted by `byte-counter`. */
  bytesIn: number;
  bytesOut: number;
  /** Milliseconds (one decimal) from the request head to the upstream being ready, to its first byte, to the end. */
  connectMs: number | null;
  firstByteMs: number | null;
  totalMs: number;
  /** Whether the upstream connection came from the pool. */
  reused: boolean;
  /** The plugin that answered in the upstream's place, if one did. */
  answeredBy?: string;
  /** The error code, when the request or the connection failed. */
  error?: string;
}

/**
 * Writes one access-log record per HTTP request when its response ends, one per tunnel
 * (CONNECT, or an upgrade answered 101) when the connection closes, and one for a connection
 * that failed outside any request (the `onExchangeEnd` hook): as JSON lines, or in Common /
 * Combined Log Format. Records go through a non-blocking pino destination (SonicBoom) to a file
 * or stdout, flushed on dispose. Byte counts come from `byte-counter`, wherever it is listed.
 */
@injectable()
export class AccessLogPlugin implements ProxyPlugin {
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
          description: 'File to append records to, relative to the config file\'s folder; absent: stdout.',
        },
      },
    },
  };
  readonly name = AccessLogPlugin.manifest.name;
  private readonly out: BufferDestination;
  private disposed = false;
  private readonly flusher: NodeJS.Timeout;
  /** Lines not yet handed to the destination, as bytes. */
  private readonly lines = new LineBuffer(BATCH_BYTES + 16 * 1024);

  constructor(
    @inject(PluginOptions) private readonly options: AccessLogOptions,
    @inject(PluginBaseDir) baseDir: string,
  ) {
    // Opened here, synchronously: a file that cannot be opened stops start-up, and the
    // destination is ready from the first record.
    const fd = options.path === undefined ? 1 : openSync(path.resolve(baseDir, options.path), 'a');
    // Records are batched (BATCH_BYTES, or each second) instead of one write per request.
    this.out = pino.destination({ dest: fd, sync: false, contentMode: 'buffer' }) as unknown as BufferDestination;
    this.flusher = setInterval(() => this.flush(), 1000);
    this.flusher.unref();
  }

  /** Writes the record of `exchange` (or of the connection, when it failed outside any request). */
  onExchangeEnd(ctx: ConnectionContext, exchange: Exchange | undefined, error?: ProxyError): void {
    if (this.disposed) return;
    const record = accessRecord(ctx, exchange, error);
    if (this.options.format === 'json') this.lines.record(record);
    else this.lines.text(this.clf(record, exchange));
    if (this.lines.size >= BATCH_BYTES) this.handOver();
  }

  /** Flushes what is buffered and closes the file (stdout stays open). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearInterval(this.flusher);
    this.handOver();
    try {
      this.out.flushSync();
    } catch {
      // Nothing more can be done at shutdown; end() below still writes what it can.
    }
    this.out.end();
  }

  /** Writes out what the batch holds (a destination still opening is left for the next tick). */
  private flush(): void {
    this.handOver();
    try {
      this.out.flush();
    } catch {
      // Not ready yet, or busy: the next flush or dispose writes it.
    }
  }

  /** Gives the batch to the destination, which writes it asynchronously, in order. */
  private handOver(): void {
    const bytes = this.lines.take();
    if (bytes) this.out.write(bytes);
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

/** A SonicBoom in buffer mode (its typings know only strings). */
interface BufferDestination {
  write(chunk: Buffer): boolean;
  flush(): void;
  flushSync(): void;
  end(): void;
}

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
