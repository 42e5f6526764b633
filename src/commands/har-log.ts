// Capture records to HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/).
import { isIP } from 'node:net';
import { getHeader, type HeaderField } from '../core/http/head.js';
import { ERROR_TABLE, type ErrorTableEntry } from '../core/errors.js';
import type { FaultDecision } from '../core/exchange.js';
import type { CaptureRecord } from '../plugins/capture-record.js';
import { bodyContent, type BodyContent } from './http-body.js';
import { absoluteUrl } from './record-url.js';

/** A HAR name/value pair (header, query parameter). */
export interface HarPair {
  /** The field's name, case kept. */
  name: string;
  /** Its value. */
  value: string;
}

/** HAR `timings`: milliseconds, -1 for a phase that does not apply. */
export interface HarTimings {
  /** Waiting for a connection: for a pooled upstream, the time until it was handed over. */
  blocked: number;
  /** Never measured here. */
  dns: number;
  /** Until a fresh upstream connection was ready; -1 for a pooled one. */
  connect: number;
  /** Always 0: the request is streamed, its sending overlaps the wait. */
  send: number;
  /** From the upstream ready to the first response byte. */
  wait: number;
  /** From the first response byte to the end. */
  receive: number;
  /** Never measured here (TLS is tunnelled). */
  ssl: number;
}

/** HAR `content` of a response. */
export interface HarContent {
  /** Bytes of the content, codings undone where the capture allowed it. */
  size: number;
  /** Bytes the codings saved, when they were undone. */
  compression?: number;
  /** The Content-Type, or "" without one. */
  mimeType: string;
  /** The captured content: text, or base64 with `encoding`. */
  text?: string;
  /** `base64` when `text` is base64. */
  encoding?: string;
  /** What the capture left out, or what could not be undone. */
  comment?: string;
}

/** One HAR entry: a captured request and its response. */
export interface HarEntry {
  /** When the request head arrived (ISO 8601). */
  startedDateTime: string;
  /** The sum of the timings that apply. */
  time: number;
  /** The request as the client sent it. */
  request: {
    method: string;
    url: string;
    httpVersion: string;
    cookies: never[];
    headers: HarPair[];
    queryString: HarPair[];
    postData?: { mimeType: string; text: string; params?: never[]; comment?: string; _encoding?: string };
    headersSize: number;
    bodySize: number;
  };
  /** The response the client got (status 0 when none was sent). */
  response: {
    status: number;
    statusText: string;
    httpVersion: string;
    cookies: never[];
    headers: HarPair[];
    content: HarContent;
    redirectURL: string;
    headersSize: number;
    bodySize: number;
  };
  /** Nothing known about caches. */
  cache: Record<string, never>;
  /** Phases of the exchange. */
  timings: HarTimings;
  /** The upstream's address, when it is an IP address. */
  serverIPAddress?: string;
  /** The client connection's ordinal, as a string. */
  connection: string;
  /** The client connection's ordinal (proxyline's own field). */
  _connection: number;
  /** The request's ordinal on its connection. */
  _exchange: number;
  /** The faults that fired for it. */
  _faults: FaultDecision[];
  /** Why it failed, when it did. */
  _error?: { code: string; message: string };
  /** The plugin that answered in the upstream's place. */
  _answeredBy?: string;
  /** Whether the upstream connection came from the pool. */
  _reused: boolean;
}

/** A HAR 1.2 document. */
export interface Har {
  /** The root object. */
  log: {
    version: '1.2';
    creator: { name: string; version: string };
    entries: HarEntry[];
    comment?: string;
    /** The records that are not HTTP exchanges (tunnels, connection failures), in brief. */
    _skipped: { kind: 'tunnel' | 'failure'; connection: number; exchange: number; startedDateTime: string; target?: string; error?: string }[];
  };
}

/** Rounds to the capture's precision (0.1 ms) and never below 0, so that sums of differences stay clean. */
const tenth = (ms: number): number => Math.max(0, Math.round(ms * 10) / 10);

const pairs = (headers: readonly HeaderField[]): HarPair[] => headers.map(([name, value]) => ({ name, value }));

/** `1.1` to `HTTP/1.1`. */
const httpVersion = (version: string): string => (version.startsWith('HTTP/') ? version : `HTTP/${version}`);

/** The query parameters of a URL, decoded as a browser would; none when it does not parse. */
function queryString(url: string): HarPair[] {
  try {
    return [...new URL(url).searchParams].map(([name, value]) => ({ name, value }));
  } catch {
    return [];
  }
}

/** A Content-Length value, or undefined when there is none or it is not one number. */
function contentLength(headers: readonly HeaderField[]): number | undefined {
  const value = getHeader(headers, 'content-length');
  return value !== undefined && /^\d+$/.test(value.trim()) ? Number(value.trim()) : undefined;
}

/**
 * The HAR timings of a record: connect for a fresh upstream (its time spent waiting for a pooled
 * one goes in `blocked`, so that `time` still covers the whole exchange), wait to the first
 * response byte (to the end when none came), receive after it.
 */
export function harTimings(record: CaptureRecord): HarTimings {
  const { connectMs, firstByteMs, endMs } = record.timings;
  const ready = connectMs ?? 0;
  const firstByte = firstByteMs ?? endMs;
  return {
    blocked: connectMs !== null && record.reused ? tenth(connectMs) : -1,
    dns: -1,
    connect: connectMs !== null && !record.reused ? tenth(connectMs) : -1,
    send: 0,
    wait: tenth(firstByte - ready),
    receive: tenth(endMs - firstByte),
    ssl: -1,
  };
}

/**
 * The size HAR means by `bodySize`: 0 for a message without a body, the captured body when all of
 * it was captured, else Content-Length unless the exchange failed (the body may have been cut);
 * -1 when unknown.
 */
function bodySize(captured: BodyContent | undefined, headers: readonly HeaderField[], hasNoBody: boolean, failed: boolean): number {
  if (hasNoBody) return 0;
  if (captured && !captured.truncated) return captured.wireSize;
  return failed ? -1 : (contentLength(headers) ?? -1);
}

/**
 * Whether the response may have been cut: the exchange failed, and the response is not the
 * proxy's own answer for that failure (whose status the error table gives, and which is sent whole).
 */
function responseCut(record: CaptureRecord): boolean {
  if (!record.error || !record.response) return false;
  const known = (ERROR_TABLE as Record<string, ErrorTableEntry | undefined>)[record.error.code];
  return known?.status !== record.response.status;
}

/** What a content's comment says: what the capture cut, what could not be undone. */
function contentComment(content: BodyContent): string | undefined {
  const parts = [content.truncated ? `captured the first ${content.wireSize} bytes only` : undefined, content.note].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** One HAR entry for an `http` record. */
export function harEntry(record: CaptureRecord): HarEntry {
  const request = record.request!;
  const url = absoluteUrl(request);
  const requestBody = record.requestBody && bodyContent(record.requestBody, request.headers);
  const requestHasNoBody = contentLength(request.headers) === undefined && getHeader(request.headers, 'transfer-encoding') === undefined;
  const { response } = record;
  const responseHeaders = response?.headers ?? [];
  const responseBody = response && record.responseBody ? bodyContent(record.responseBody, responseHeaders) : undefined;
  const status = response?.status ?? 0;
  // No body after a HEAD, a 1xx, a 204 or a 304 (RFC 9112 §6.3).
  const responseHasNoBody = request.method === 'HEAD' || status < 200 || status === 204 || status === 304;
  const timings = harTimings(record);
  // ssl is counted inside connect by the spec, so it is not added again.
  const time = tenth(
    [timings.blocked, timings.dns, timings.connect, timings.send, timings.wait, timings.receive].reduce((sum, value) => (value > 0 ? sum + value : sum), 0),
  );
  const wireBodySize = response ? bodySize(responseBody, responseHeaders, responseHasNoBody, responseCut(record)) : -1;
  // The content's size: what the whole capture decoded to, else the body's size when known (exact
  // without a Content-Encoding), else as much as was captured.
  const size = responseBody && !responseBody.truncated ? responseBody.size : wireBodySize >= 0 ? wireBodySize : (responseBody?.size ?? 0);
  const content: HarContent = { size, mimeType: getHeader(responseHeaders, 'content-type') ?? '' };
  if (responseBody) {
    if (!responseBody.truncated && !responseBody.note && responseBody.size > wireBodySize && wireBodySize >= 0)
      content.compression = responseBody.size - wireBodySize;
    content.text = responseBody.text;
    if (responseBody.encoding) content.encoding = responseBody.encoding;
    const comment = contentComment(responseBody);
    if (comment) content.comment = comment;
  }
  const entry: HarEntry = {
    startedDateTime: record.startedAt,
    time,
    request: {
      method: request.method,
      url,
      httpVersion: httpVersion(request.version),
      cookies: [],
      headers: pairs(request.headers),
      queryString: queryString(url),
      headersSize: -1,
      bodySize: bodySize(requestBody, request.headers, requestHasNoBody, false),
    },
    response: {
      status,
      statusText: response?.reason ?? '',
      httpVersion: response ? httpVersion(response.version) : '',
      cookies: [],
      headers: pairs(responseHeaders),
      content,
      redirectURL: getHeader(responseHeaders, 'location') ?? '',
      headersSize: -1,
      bodySize: wireBodySize,
    },
    cache: {},
    timings,
    connection: String(record.connection),
    _connection: record.connection,
    _exchange: record.exchange,
    _faults: record.faults,
    _reused: record.reused,
  };
  if (requestBody) {
    const postData: NonNullable<HarEntry['request']['postData']> = { mimeType: getHeader(request.headers, 'content-type') ?? '', text: requestBody.text };
    if (requestBody.encoding) postData._encoding = requestBody.encoding;
    const comment = contentComment(requestBody);
    if (comment) postData.comment = comment;
    entry.request.postData = postData;
  }
  if (record.upstream && isIP(record.upstream.host)) entry.serverIPAddress = record.upstream.host;
  if (record.error) entry._error = record.error;
  if (record.answeredBy) entry._answeredBy = record.answeredBy;
  return entry;
}

/** Milliseconds since the epoch of a record's start, for sorting. */
const startOf = (record: CaptureRecord): number => Date.parse(record.startedAt);

/**
 * A HAR 1.2 log of the `http` records, in the order they started. Tunnels and connection failures
 * are not request/response exchanges: they are listed briefly in `log._skipped` and counted in
 * `log.comment`.
 */
export function toHar(records: readonly CaptureRecord[], creator: { name: string; version: string }): Har {
  const ordered = [...records].sort((a, b) => startOf(a) - startOf(b) || a.connection - b.connection || a.exchange - b.exchange);
  const entries: HarEntry[] = [];
  const skipped: Har['log']['_skipped'] = [];
  for (const record of ordered) {
    if (record.kind === 'http' && record.request) {
      entries.push(harEntry(record));
      continue;
    }
    const kind = record.kind === 'tunnel' ? 'tunnel' : 'failure';
    const brief: Har['log']['_skipped'][number] = { kind, connection: record.connection, exchange: record.exchange, startedDateTime: record.startedAt };
    if (record.request) brief.target = `${record.request.method} ${record.request.target}`;
    if (record.error) brief.error = record.error.code;
    skipped.push(brief);
  }
  const log: Har['log'] = { version: '1.2', creator, entries, _skipped: skipped };
  if (skipped.length > 0) {
    const tunnels = skipped.filter((brief) => brief.kind === 'tunnel').length;
    log.comment = `Not HTTP exchanges, left out of entries (see _skipped): ${tunnels} tunnel(s), ${skipped.length - tunnels} connection failure(s).`;
  }
  return { log };
}
