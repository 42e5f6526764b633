import { badRequest } from '../errors.js';
import { contentLength } from './head-reader.js';
import { getHeaderTokens, isField, type RequestHead } from './head.js';

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
  // One pass over the fields (this runs for every request); the rare cases look closer below.
  let hosts = 0;
  let lengths: string[] | undefined;
  let hasTransferEncoding = false;
  for (const [name, value] of head.headers) {
    if (isField(name, 'host')) hosts++;
    else if (isField(name, 'content-length')) (lengths ??= []).push(value);
    else if (isField(name, 'transfer-encoding')) hasTransferEncoding = true;
  }
  if (hosts > 1) throw badRequest('more than one Host header');
  if (hosts === 0 && head.version === '1.1') throw badRequest('missing Host header');
  if (head.method === 'CONNECT') {
    // A CONNECT has no content (RFC 9110 §9.3.6): a body announced on one would make another hop
    // disagree with us about where the tunnel starts.
    if (hasTransferEncoding || (lengths && contentLength(lengths, badRequest) !== 0)) throw badRequest('a CONNECT request with content');
    return TUNNEL;
  }

  if (hasTransferEncoding) {
    if (lengths) throw badRequest('both Content-Length and Transfer-Encoding');
    if (head.version === '1.0') throw badRequest('Transfer-Encoding in an HTTP/1.0 request');
    const codings = getHeaderTokens(head.headers, 'transfer-encoding');
    if (codings.length !== 1 || codings[0] !== 'chunked') throw badRequest('unsupported Transfer-Encoding');
    return CHUNKED;
  }
  if (!lengths) return NONE;
  const length = contentLength(lengths, badRequest);
  return length === 0 ? NONE : { kind: 'length', length };
}

const NONE: RequestFraming = { kind: 'none' };
const TUNNEL: RequestFraming = { kind: 'tunnel' };
const CHUNKED: RequestFraming = { kind: 'chunked' };
