import { STATUS_CODES } from 'node:http';
import { ProxyError } from './errors.js';
import type { LocalReply } from './exchange.js';
import { isField, type HeaderField } from './http/head.js';
import { isFieldValue, isToken } from './http/syntax.js';

/** What {@link localReply} builds a reply from; everything is optional. */
export interface LocalReplyInit {
  /** Header fields, as `[name, value]` pairs (kept in order, repeats allowed) or an object. Content-Length is computed. */
  readonly headers?: readonly HeaderField[] | Readonly<Record<string, string>>;
  /** The body: a string (sent as UTF-8) or bytes (sent as they are, not copied). */
  readonly body?: string | Uint8Array;
  /** The reason phrase; Node's for the status by default (`Unknown` for one it does not know). */
  readonly reason?: string;
}

/** Statuses whose responses never carry a body (RFC 9110 §15.3.5, §15.4.5). */
const isBodyless = (status: number) => status === 204 || status === 304;

const EMPTY = Buffer.alloc(0);

/**
 * Builds the response a plugin gives in the upstream's place (`exchange.reply = localReply(…)`),
 * framed by a Content-Length that matches its body, so a plugin cannot get the framing wrong:
 * any Content-Length or Transfer-Encoding in `headers` is replaced. A body is not copied, so
 * one large Buffer can answer many requests. Throws `ERR_PROXY_INTERNAL` for a status that is
 * not final (200–999), a body on a 204 or 304, or a field that is not valid HTTP.
 */
export function localReply(status: number, init: LocalReplyInit = {}): LocalReply {
  const body = toBuffer(init.body);
  const given = init.headers === undefined ? [] : Array.isArray(init.headers) ? (init.headers as readonly HeaderField[]) : Object.entries(init.headers);
  const headers: HeaderField[] = [];
  for (const [name, value] of given) {
    if (!isField(name, 'content-length') && !isField(name, 'transfer-encoding')) headers.push([name, value]);
  }
  if (!isBodyless(status)) headers.push(['Content-Length', String(body.length)]);
  const reason = init.reason ?? STATUS_CODES[status] ?? 'Unknown';
  return checkLocalReply({ head: { version: '1.1', status, reason, headers }, body });
}

/** A string as UTF-8, a Buffer as is, other bytes wrapped without a copy. */
function toBuffer(body: string | Uint8Array | undefined): Buffer {
  if (body === undefined) return EMPTY;
  if (typeof body === 'string') return Buffer.from(body);
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * Makes sure a plugin's own reply frames its body (the client would otherwise hang or misread
 * the next response): a missing Content-Length is added (a copy of the head; the reply is
 * returned as is when it is right). A reply that cannot be sent as it is — a status that is not
 * final, Transfer-Encoding, a Content-Length other than the body's length, a body on a 204 or
 * 304, a field that is not valid HTTP — throws `ERR_PROXY_INTERNAL`, and the client gets a 500.
 */
export function checkLocalReply(reply: LocalReply): LocalReply {
  const { head, body } = reply;
  const { status } = head;
  if (!Number.isInteger(status) || status < 200 || status > 999) fail(`status ${status} is not a final status (200–999)`);
  if (!isFieldValue(head.reason)) fail(`reason phrase ${JSON.stringify(head.reason)} is not a valid field value`);
  if (!Buffer.isBuffer(body)) fail('its body is not a Buffer');
  const bodyless = isBodyless(status);
  if (bodyless && body.length > 0) fail(`a ${status} response has no body, found ${body.length} bytes`);
  let framed = false;
  for (const [name, value] of head.headers) {
    if (!isToken(name)) fail(`field name ${JSON.stringify(name)} is not a token`);
    if (!isFieldValue(value)) fail(`field ${name}: ${JSON.stringify(value)} is not a valid field value`);
    if (isField(name, 'transfer-encoding')) fail('it is framed by Transfer-Encoding; a local reply is framed by Content-Length');
    if (!isField(name, 'content-length')) continue;
    // A 304's Content-Length is the length of the representation it stands for, not of a body.
    if (status === 304) continue;
    if (status === 204) fail('a 204 response has no Content-Length');
    if (value.trim() !== String(body.length)) fail(`Content-Length ${JSON.stringify(value)} does not match its body of ${body.length} bytes`);
    framed = true;
  }
  if (framed || bodyless) return reply;
  return { head: { ...head, headers: [...head.headers, ['Content-Length', String(body.length)]] }, body };
}

function fail(problem: string): never {
  throw new ProxyError('ERR_PROXY_INTERNAL', `a plugin's local reply cannot be sent: ${problem}`);
}
