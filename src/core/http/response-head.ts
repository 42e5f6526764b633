import type { Exchange } from '../exchange.js';
import { hasHeaderToken, type HeaderField } from './head.js';
import type { ResponseHead } from './response-framing.js';

/** Serializes a response head to the bytes sent to the client. */
export function serializeResponseHead(head: ResponseHead): Buffer {
  let text = `HTTP/${head.version} ${head.status} ${head.reason}\r\n`;
  for (const [name, value] of head.headers) text += `${name}: ${value}\r\n`;
  return Buffer.from(text + '\r\n', 'latin1');
}

/** The byte length {@link serializeResponseHead} would produce, without building it. */
export function responseHeadLength(head: ResponseHead): number {
  let length = head.reason.length + 17; // 'HTTP/1.x ' + 3 digits + ' ' + CRLF + final CRLF
  for (const [name, value] of head.headers) length += name.length + value.length + 4;
  return length;
}

/** A copy of `headers` with one field set (replacing every field of that name, or appended). */
export function withHeader(headers: readonly HeaderField[], name: string, value: string): HeaderField[] {
  const lower = name.toLowerCase();
  const kept = headers.filter(([key]) => key.toLowerCase() !== lower);
  kept.push([name, value]);
  return kept;
}

/**
 * The head as the client receives it: the client connection's own persistence is stated last,
 * after the plugins (`Connection: close` when the proxy will close it, `keep-alive` for an
 * HTTP/1.0 client that keeps it). Interim, 101 and CONNECT 2xx heads pass as they are.
 */
export function forClient(head: ResponseHead, exchange: Exchange): ResponseHead {
  // Interim heads, and a CONNECT's 200: what follows it is a tunnel, not a next response.
  if (head.status < 200 || (exchange.isConnect && head.status < 300)) return head;
  if (exchange.closeClient)
    return hasHeaderToken(head.headers, 'connection', 'close') ? head : { ...head, headers: withHeader(head.headers, 'Connection', 'close') };
  if (exchange.keepAliveHttp10 && !hasHeaderToken(head.headers, 'connection', 'keep-alive')) {
    return { ...head, headers: withHeader(head.headers, 'Connection', 'keep-alive') };
  }
  return head;
}
