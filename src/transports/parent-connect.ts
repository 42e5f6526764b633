import type { Duplex } from 'node:stream';
import type { Target } from '../core/context.js';
import { ProxyError } from '../core/errors.js';
import { HeadReader } from '../core/http/head-reader.js';
import { parseResponseHead } from '../core/http/response-framing.js';
import type { ParentProxy } from '../core/transport.js';

/** The largest answer head a parent may send to CONNECT; a larger one is refused, not waited on. */
export const MAX_PARENT_HEAD_BYTES = 16 * 1024;

/** The `Proxy-Authorization` value for a parent with credentials (Basic, RFC 7617), else undefined. */
export function parentAuthorization(parent: ParentProxy): string | undefined {
  if (parent.username === undefined) return undefined;
  return `Basic ${Buffer.from(`${parent.username}:${parent.password ?? ''}`, 'utf8').toString('base64')}`;
}

/** `host:port` as written in a request target (IPv6 in brackets). */
export function authorityOf(target: Target): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/** A refusal or failure of a parent that was reached: 502 naming it, never its credentials. */
export const parentError = (parent: ParentProxy, what: string, cause?: unknown) =>
  new ProxyError('ERR_PROXY_PARENT', `parent proxy ${parent.name} ${what}`, { cause });

/**
 * Asks an http(s) parent, over `socket` (already connected to it), to tunnel to `target` with
 * CONNECT, sending its Proxy-Authorization. Its answer head is read strictly and bounded; a 2xx
 * resolves with the same socket, paused, any bytes after the head put back for the tunnel. Any
 * other answer, a malformed one, or a close rejects with ERR_PROXY_PARENT naming what it said, and
 * the socket is destroyed. An abort of `signal` destroys the socket and rejects.
 */
export function connectThroughParent(socket: Duplex, target: Target, parent: ParentProxy, signal: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const authority = authorityOf(target);
    const authorization = parentAuthorization(parent);
    let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
    if (authorization) head += `Proxy-Authorization: ${authorization}\r\n`;
    const reader = new HeadReader(
      MAX_PARENT_HEAD_BYTES,
      (message) => parentError(parent, `sent a malformed answer to CONNECT: ${message}`),
      () => parentError(parent, `sent an answer head to CONNECT over ${MAX_PARENT_HEAD_BYTES} bytes`),
    );
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (error: ProxyError) => {
      cleanup();
      socket.on('error', ignore); // a destroyed socket may still report a write it had pending
      socket.destroy();
      reject(error);
    };
    const onAbort = () => fail(new ProxyError('ERR_PROXY_ABORTED', `CONNECT through parent proxy ${parent.name} aborted`));
    const onEnd = () => fail(parentError(parent, 'closed the connection before answering CONNECT'));
    const onError = (error: NodeJS.ErrnoException) => fail(parentError(parent, `failed while answering CONNECT: ${error.code ?? error.message}`, error));
    const onData = (chunk: Buffer) => {
      let found;
      try {
        found = reader.read(chunk, 0);
        if (!found) return;
        const answer = parseResponseHead(found.text);
        if (answer.status < 200 || answer.status > 299) {
          return fail(parentError(parent, `answered ${answer.status}${answer.reason ? ` ${answer.reason}` : ''}`));
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return fail(
          error instanceof ProxyError && error.code === 'ERR_PROXY_PARENT'
            ? error
            : parentError(parent, `sent a malformed answer to CONNECT: ${message}`, error),
        );
      }
      cleanup();
      // Nothing may be read until the outbound pipeline owns the flow; bytes after the head
      // (an origin that speaks first) belong to the tunnel.
      socket.pause();
      if (found.next < chunk.length) socket.unshift(chunk.subarray(found.next));
      resolve(socket);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.on('error', onError);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.write(`${head}\r\n`, 'latin1');
    socket.resume();
  });
}

/** Swallows the late errors of a socket already given up. */
export function ignore(): void {}
