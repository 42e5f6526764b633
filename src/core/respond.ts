import type { Duplex } from 'node:stream';
import { ERROR_TABLE, type ProxyError } from './errors.js';

/** How long a client may keep sending after an error response before its socket is destroyed. */
export const LINGER_MS = 2000;

/** The bytes of the error response for `error`: status, `Connection: close`, one-line reason. */
export function errorResponse(error: ProxyError): Buffer {
  const { reason } = ERROR_TABLE[error.code];
  const body = `${error.expose ? error.message : reason}\n`;
  const head =
    `HTTP/1.1 ${error.status} ${reason}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n';
  return Buffer.from(head + body);
}

/**
 * The one place an error becomes bytes: a response while nothing has gone to the client yet
 * (and the error has a status), otherwise an abrupt close. Returns whether a response was sent.
 */
export function sendError(client: Duplex, error: ProxyError, responseStarted: boolean): boolean {
  if (error.status === 0 || responseStarted || client.destroyed || client.writableEnded) {
    client.destroy();
    return false;
  }
  client.end(errorResponse(error));
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
