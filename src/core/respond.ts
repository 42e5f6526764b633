import type { Duplex } from 'node:stream';
import type { ClientDialect } from './dialect.js';
import { ERROR_TABLE, type ProxyError } from './errors.js';
import type { HeaderField } from './http/head.js';
import type { ResponseHead } from './http/response-framing.js';
import { serializeResponseHead } from './http/response-head.js';

/** How long a client may keep sending after an error response before its socket is destroyed. */
export const LINGER_MS = 2000;

/**
 * The head and one-line body of the error response for `error` (the message hidden if internal).
 * With `close` false the head leaves the connection's persistence to the sink (a refusal on a
 * connection that stays open).
 */
export function errorResponseParts(error: ProxyError, close = true): { head: ResponseHead; body: Buffer } {
  const { reason } = ERROR_TABLE[error.code];
  const body = Buffer.from(`${error.expose ? error.message : reason}\n`);
  const headers: HeaderField[] = [
    ...error.headers.map(([name, value]): HeaderField => [name, value]),
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(body.length)],
  ];
  if (close) headers.push(['Connection', 'close']);
  return { head: { version: '1.1', status: error.status, reason, headers }, body };
}

/** The bytes of the error response for `error`: status, `Connection: close`, one-line reason. */
export function errorResponse(error: ProxyError): Buffer {
  const { head, body } = errorResponseParts(error);
  return Buffer.concat([serializeResponseHead(head), body]);
}

/**
 * The fallback for errors the response stream cannot carry (an outbound plugin failing, a
 * shutdown): a response while nothing has gone to the client yet (and the error has a status),
 * otherwise an abrupt close. Errors of a request are answered in order by the ResponseSource
 * with {@link errorResponseParts}. A client with a dialect gets its protocol's failure reply.
 * Returns whether a response was sent.
 */
export function sendError(client: Duplex, error: ProxyError, responseStarted: boolean, dialect?: ClientDialect): boolean {
  if (error.status === 0 || responseStarted || client.destroyed || client.writableEnded) {
    client.destroy();
    return false;
  }
  client.end(dialect ? dialect.reply(errorResponseParts(error).head, undefined, error) : errorResponse(error));
  lingeringClose(client);
  return true;
}

/**
 * Ends a socket without losing the response: the client may still be sending (a large head, a
 * body), and closing with unread bytes would reset the connection before it reads our answer.
 * So keep reading and discarding until its FIN (then the socket closes itself, both sides being
 * done), or destroy it after {@link LINGER_MS}.
 */
export function lingeringClose(socket: Duplex): void {
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.on('data', () => {});
  socket.resume();
}
