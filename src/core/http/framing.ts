import { badRequest } from '../errors.js';
import { contentLength } from './head-reader.js';
import { getHeaderTokens, getHeaderValues, type RequestHead } from './head.js';

/** How the body of a request is delimited (RFC 9112 §6.3). */
export type RequestFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  /** CONNECT: everything after the head belongs to the tunnel. */
  | { kind: 'tunnel' };

/**
 * Decides a request's framing, refusing every ambiguity a smuggler could use: Transfer-Encoding
 * together with Content-Length, codings other than a lone final `chunked`, differing or
 * non-numeric Content-Length values, and more than one Host.
 */
export function requestFraming(head: RequestHead): RequestFraming {
  const hosts = getHeaderValues(head.headers, 'host');
  if (hosts.length > 1) throw badRequest('more than one Host header');
  if (hosts.length === 0 && head.version === '1.1') throw badRequest('missing Host header');
  if (head.method === 'CONNECT') return { kind: 'tunnel' };

  const lengths = getHeaderValues(head.headers, 'content-length');
  const codings = getHeaderTokens(head.headers, 'transfer-encoding');
  const hasTransferEncoding = codings.length > 0 || getHeaderValues(head.headers, 'transfer-encoding').length > 0;
  if (hasTransferEncoding) {
    if (lengths.length > 0) throw badRequest('both Content-Length and Transfer-Encoding');
    if (head.version === '1.0') throw badRequest('Transfer-Encoding in an HTTP/1.0 request');
    if (codings.length !== 1 || codings[0] !== 'chunked') throw badRequest('unsupported Transfer-Encoding');
    return { kind: 'chunked' };
  }
  if (lengths.length === 0) return { kind: 'none' };
  const length = contentLength(lengths, badRequest);
  return length === 0 ? { kind: 'none' } : { kind: 'length', length };
}
