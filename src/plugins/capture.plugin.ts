import path from 'node:path';
import { identity, type MonoTypeOperatorFunction } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import type { ProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import type { ResponseHead } from '../core/http/response-framing.js';
import { Logger } from '../core/logger.js';
import { PluginBaseDir, PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { errorResponseParts } from '../core/respond.js';
import { stage } from '../core/stage.js';
import { ProxyStats } from '../core/stats.js';
import { BatchedLog } from './batched-log.js';
import { RequestBodyTap, ResponseBodyTap, type BodyStore, type ExchangeBodies } from './capture-bodies.js';
import { RotatingFile } from './capture-file.js';
import type { CaptureRecord } from './capture-record.js';
import { isoTime, msBetween } from './record-time.js';

/** Options of `capture`. */
export interface CaptureOptions {
  /** The current capture file, relative to the config file's folder; rotated ones are named `<name>.1<ext>`, `<name>.2<ext>`, …. */
  path: string;
  /** Bytes of each request and response body kept in its record (base64); 0: no bodies, and no stage at all. */
  maxBodyBytes: number;
  /** The file is rotated before a record would take it past this size. */
  maxFileBytes: number;
  /** Files kept in all (the current one and the rotated ones); the oldest is deleted. */
  maxFiles: number;
  /** Bytes of records that may wait for the file or a rotation; past it, records are dropped and counted. */
  maxBufferBytes: number;
}

/**
 * Records every exchange as one JSON line (a `CaptureRecord`) when it ends — an HTTP request
 * when its response ends, a tunnel (CONNECT, 101) when it closes, a connection that failed
 * outside any request — with both heads, where it went, timings, bytes, faults and, when
 * `maxBodyBytes` > 0, the first bytes of both bodies. For `proxyline har` and `proxyline report`.
 * Written like access-log's (batched, asynchronous, bounded memory, losses counted in
 * `ProxyStats.captureDropped` and warned at most once a minute) to a file rotated by size.
 */
@injectable()
export class CapturePlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'capture',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        path: {
          type: 'string',
          minLength: 1,
          default: 'capture.jsonl',
          description: "The current capture file, relative to the config file's folder; rotated files are <name>.1<ext>, <name>.2<ext>, … (1 the newest).",
        },
        maxBodyBytes: {
          type: 'integer',
          minimum: 0,
          default: 0,
          description: 'Bytes of each request and response body kept in its record (base64, with truncated); 0: no bodies, and no stage in the data path.',
        },
        maxFileBytes: {
          type: 'integer',
          minimum: 1024,
          default: 100 * 1024 * 1024,
          description: 'The file is rotated before a record would take it past this size (a longer record gets a file of its own).',
        },
        maxFiles: {
          type: 'integer',
          minimum: 1,
          default: 5,
          description: 'Files kept in all, the current one included; at a rotation the oldest is deleted.',
        },
        maxBufferBytes: {
          type: 'integer',
          minimum: 65536,
          default: 16 * 1024 * 1024,
          description:
            'Bytes of records that may wait for the file (a stalled disk) or a rotation; past it, records are dropped and counted (proxyline_capture_dropped_total).',
        },
      },
    },
  };
  readonly name = CapturePlugin.manifest.name;
  /**
   * The response bodies' stage: present only when bodies are captured, so that without them the
   * plugin puts nothing in the response path.
   */
  readonly outbound?: (ctx: ConnectionContext) => MonoTypeOperatorFunction<ProxyEvent>;
  /** Batches the lines, counts and warns about lost ones, closes within a bound. */
  private readonly log: BatchedLog;
  /** Each connection's ordinal, given in accept order by `inbound` (called once per connection as it starts). */
  private readonly ordinals = new WeakMap<ConnectionContext, number>();
  private accepted = 0;
  /** The bodies kept for each exchange until it ends; absent when bodies are not captured. */
  private readonly bodies?: BodyStore;

  constructor(
    @inject(PluginOptions) private readonly options: CaptureOptions,
    @inject(PluginBaseDir) baseDir: string,
    @inject(ProxyStats) stats: ProxyStats,
    @inject(Logger) logger: Logger,
  ) {
    const file = path.resolve(baseDir, options.path);
    this.log = new BatchedLog(
      { name: this.name, where: options.path, maxBufferBytes: options.maxBufferBytes, count: (records) => (stats.captureDropped += records), logger },
      (onLoss) => new RotatingFile(file, options, onLoss, logger, this.name),
    );
    if (options.maxBodyBytes > 0) {
      const bodies: BodyStore = new WeakMap();
      this.bodies = bodies;
      this.outbound = () => stage((downstream) => new ResponseBodyTap(downstream, bodies));
    }
  }

  /** Numbers the connection; passes the events untouched unless request bodies are captured. */
  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    this.ordinals.set(ctx, ++this.accepted);
    const { bodies } = this;
    if (!bodies) return identity;
    const max = this.options.maxBodyBytes;
    return stage((downstream) => new RequestBodyTap(downstream, bodies, max));
  }

  /** Writes the record of `exchange` (or of the connection, when it failed outside any request). */
  onExchangeEnd(ctx: ConnectionContext, exchange: Exchange | undefined, error?: ProxyError): void {
    const { log } = this;
    if (log.closed) return;
    let bodies: ExchangeBodies | undefined;
    if (exchange && this.bodies) {
      bodies = this.bodies.get(exchange);
      this.bodies.delete(exchange);
    }
    const record = captureRecord(this.ordinal(ctx), ctx, exchange, error, bodies);
    log.lines.text(JSON.stringify(record) + '\n');
    log.added();
  }

  /** Writes out what is waiting and closes the file, within a bound (see BatchedLog). */
  dispose(): Promise<void> {
    return this.log.close();
  }

  /** The connection's ordinal; one whose chain failed to build before reaching this plugin is numbered now. */
  private ordinal(ctx: ConnectionContext): number {
    let ordinal = this.ordinals.get(ctx);
    if (ordinal === undefined) this.ordinals.set(ctx, (ordinal = ++this.accepted));
    return ordinal;
  }
}

/** The record of one exchange, or of a connection that failed outside any request (no exchange, or the core's stand-in numbered 0). */
export function captureRecord(
  connection: number,
  ctx: ConnectionContext,
  exchange: Exchange | undefined,
  error: ProxyError | undefined,
  bodies: ExchangeBodies | undefined,
): CaptureRecord {
  const failure = exchange?.error ?? error;
  const request = exchange && exchange.id > 0 ? exchange : undefined;
  // A failure outside any request is timed from the connection's accept.
  const start = request ? request.startedAt : ctx.startedAt;
  const head = request?.request;
  const target = request?.target;
  const { address, port } = ctx.clientAddress;
  const bytes = exchange?.bytes ?? ctx.bytes;
  const record: CaptureRecord = {
    v: 1,
    kind: !request ? 'failure' : isTunnel(request) ? 'tunnel' : 'http',
    connection,
    exchange: request?.id ?? 0,
    client: { address, port },
    startedAt: isoTime(performance.timeOrigin + start),
    request: head ? { method: head.method, target: head.target, version: head.version, headers: head.headers } : null,
    response: responseRecord(ctx, exchange, error),
    upstream: target ? { host: target.host, port: target.port } : null,
    reused: exchange?.reused ?? false,
    timings: {
      connectMs: msBetween(start, exchange?.timings.connected),
      firstByteMs: msBetween(start, exchange?.timings.firstByte),
      endMs: msBetween(start, exchange?.timings.ended ?? performance.now())!,
    },
    bytes: { in: bytes.inbound, out: bytes.outbound },
    ...(bodies && request ? { requestBody: bodies.request.toRecord(), responseBody: bodies.response.toRecord() } : undefined),
    faults: exchange?.faults ?? [],
  };
  if (exchange?.answeredBy) record.answeredBy = exchange.answeredBy;
  if (failure) record.error = { code: failure.code, message: failure.message };
  return record;
}

/** A CONNECT that got a 2xx, or an upgrade that got its 101: bytes flowed both ways until the close. */
function isTunnel(exchange: Exchange): boolean {
  const status = (exchange.sentResponse ?? exchange.response)?.status;
  return status === 101 || (exchange.isConnect && status !== undefined && status >= 200 && status < 300);
}

/**
 * The final head the client got: as the sink wrote it (after every outbound plugin). A connection
 * that failed with nothing written yet was answered by the core itself (`sendError`) with the
 * error's own response, when the error has a status.
 */
function responseRecord(ctx: ConnectionContext, exchange: Exchange | undefined, error: ProxyError | undefined): CaptureRecord['response'] {
  let head: ResponseHead | undefined = exchange?.sentResponse;
  if (!head && error && error.status > 0 && !ctx.responseStarted) head = errorResponseParts(error).head;
  return head ? { version: head.version, status: head.status, reason: head.reason, headers: head.headers } : null;
}
