// A captured body (as it went over the wire) turned back into its content, for HAR's text fields.
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { getHeader, getHeaderTokens, type HeaderField } from '../core/http/head.js';

/** The most a captured body may grow to when its Content-Encoding is undone: a small capture can be a large bomb. */
const MAX_DECODED_BYTES = 16 * 1024 * 1024;

/** A captured body as HAR wants it: the content (framing and codings undone where possible). */
export interface BodyContent {
  /** Bytes as they went over the wire (chunk framing included), as captured. */
  readonly wireSize: number;
  /** Bytes of the content after the framing and the codings were undone (or as far as that went). */
  readonly size: number;
  /** The content: as text when it is text in UTF-8, otherwise base64. */
  readonly text: string;
  /** `base64` when `text` holds base64. */
  readonly encoding?: 'base64';
  /** The capture stopped at its size limit: the content is a prefix. */
  readonly truncated: boolean;
  /** What could not be undone, when something could not. */
  readonly note?: string;
}

/**
 * The data of a chunked body, as far as it is well formed; `complete` once its last chunk was
 * read. Chunk extensions and trailers are dropped.
 */
export function dechunk(wire: Buffer): { data: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  // Bounded: every turn consumes a size line and its data, or stops.
  while (at < wire.length) {
    const lineEnd = wire.indexOf('\r\n', at, 'latin1');
    if (lineEnd < 0) break;
    const sizeText = wire.toString('latin1', at, lineEnd).split(';', 1)[0]!.trim();
    if (!/^[0-9a-fA-F]{1,15}$/.test(sizeText)) break;
    const size = parseInt(sizeText, 16);
    if (size === 0) return { data: Buffer.concat(parts), complete: true };
    const start = lineEnd + 2;
    parts.push(wire.subarray(start, Math.min(start + size, wire.length)));
    at = start + size + 2;
  }
  return { data: Buffer.concat(parts), complete: false };
}

/** Undoes one content coding; undefined for a coding it does not know. */
function undo(coding: string, data: Buffer): Buffer | undefined {
  const options = { maxOutputLength: MAX_DECODED_BYTES };
  switch (coding) {
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(data, options);
    case 'deflate':
      // Servers send zlib-wrapped or raw deflate under the same name.
      try {
        return inflateSync(data, options);
      } catch {
        return inflateRawSync(data, options);
      }
    case 'br':
      return brotliDecompressSync(data, options);
    case 'identity':
      return data;
    default:
      return undefined;
  }
}

/** Whether a media type is text that a viewer can show as it is. */
function isTextual(mimeType: string): boolean {
  const type = mimeType.split(';', 1)[0]!.trim().toLowerCase();
  return (
    type.startsWith('text/') ||
    /[/+](json|xml)$/.test(type) ||
    type === 'application/javascript' ||
    type === 'application/ecmascript' ||
    type === 'application/x-www-form-urlencoded'
  );
}

/**
 * Turns a captured body into HAR content: chunk framing removed (Transfer-Encoding: chunked), then
 * the Content-Encoding undone when the whole body was captured; text when the media type is text
 * and the bytes are UTF-8, base64 otherwise. What cannot be undone stays as it was, with a note.
 */
export function bodyContent(captured: { base64: string; truncated: boolean }, headers: readonly HeaderField[]): BodyContent {
  const wire = Buffer.from(captured.base64, 'base64');
  let data: Buffer = wire;
  let complete = !captured.truncated;
  const notes: string[] = [];
  if (getHeaderTokens(headers, 'transfer-encoding').includes('chunked')) {
    const framed = dechunk(wire);
    data = framed.data;
    if (!framed.complete && complete) notes.push('chunked framing cut short');
    complete &&= framed.complete;
  }
  const codings = getHeaderTokens(headers, 'content-encoding').filter((coding) => coding !== 'identity');
  if (codings.length > 0) {
    if (!complete) notes.push(`${codings.join(', ')} not undone: the body is incomplete`);
    else {
      try {
        let decoded: Buffer | undefined = data;
        for (const coding of [...codings].reverse()) decoded = decoded && undo(coding, decoded);
        if (decoded) data = decoded;
        else notes.push(`${codings.join(', ')} not undone: unknown coding`);
      } catch (error) {
        notes.push(`${codings.join(', ')} not undone: ${(error as Error).message}`);
      }
    }
  }
  let text: string | undefined;
  if (isTextual(getHeader(headers, 'content-type') ?? '') && notes.length === 0) {
    try {
      // A prefix may end inside a character: streaming leaves that tail out instead of failing.
      text = new TextDecoder('utf-8', { fatal: true }).decode(data, { stream: !complete });
    } catch {
      text = undefined;
    }
  }
  return {
    wireSize: wire.length,
    size: data.length,
    text: text ?? data.toString('base64'),
    ...(text === undefined ? { encoding: 'base64' as const } : {}),
    truncated: captured.truncated,
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
  };
}
