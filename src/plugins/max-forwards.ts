import type { LocalReply } from '../core/exchange.js';
import { isField, serializeRequestHead, type HeaderField, type RequestHead } from '../core/http/head.js';

/** What a proxy at the end of a request's hop budget says it allows (RFC 9110 §9.3.7). */
const ALLOW = 'OPTIONS, GET, HEAD, POST, PUT, DELETE, PATCH, TRACE, CONNECT';

/** Fields a TRACE echo leaves out: credentials and cookies are not reflected back (RFC 9110 §9.3.8). */
const SECRET = ['proxy-authorization', 'authorization', 'cookie'];

/**
 * The Max-Forwards budget of an OPTIONS or TRACE request (RFC 9110 §7.6.2): its value, or
 * undefined for other methods and when the field is absent or not a lone decimal number (then
 * the request is forwarded as it came).
 */
export function maxForwardsOf(head: RequestHead): number | undefined {
  if (head.method !== 'OPTIONS' && head.method !== 'TRACE') return undefined;
  let found: string | undefined;
  for (const [name, value] of head.headers) {
    if (!isField(name, 'max-forwards')) continue;
    if (found !== undefined) return undefined; // more than one: ambiguous, leave it alone
    found = value;
  }
  return found !== undefined && /^\d{1,9}$/.test(found) ? Number(found) : undefined;
}

/** Replaces the Max-Forwards value in `headers` (a copy the caller owns) with `value`. */
export function setMaxForwards(headers: HeaderField[], value: number): void {
  for (let i = 0; i < headers.length; i++) {
    if (isField(headers[i]![0], 'max-forwards')) headers[i] = [headers[i]![0], String(value)];
  }
}

/**
 * The proxy's own answer to an OPTIONS or TRACE whose Max-Forwards reached 0: OPTIONS gets 200 with
 * `Allow`; TRACE gets 200 `message/http` echoing the head as received, without credentials or cookies.
 */
export function lastHopReply(head: RequestHead): LocalReply {
  if (head.method === 'OPTIONS') return ok([['Allow', ALLOW]], Buffer.alloc(0));
  const echoed = head.headers.filter(([name]) => !SECRET.some((secret) => isField(name, secret)));
  return ok([['Content-Type', 'message/http']], serializeRequestHead({ ...head, headers: echoed }));
}

/** A 200 with `headers`, framed by the Content-Length of `body`. */
function ok(headers: HeaderField[], body: Buffer): LocalReply {
  return { head: { version: '1.1', status: 200, reason: 'OK', headers: [...headers, ['Content-Length', String(body.length)]] }, body };
}

/** An OPTIONS request for the server as a whole: an absolute URL with an empty path and no query. */
export function isServerWideOptions(head: RequestHead): boolean {
  return head.method === 'OPTIONS' && /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*$/.test(head.target);
}
