import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { ProxyError } from '../core/errors.js';
import type { ParentProxy } from '../core/transport.js';
import { ignore } from './parent-connect.js';

/**
 * Starts TLS with an `https` parent over `socket` (TCP, connected to it), checking its
 * certificate against the parent's host name and its `ca` (the system's CAs without one).
 * Resolves with the TLS socket, paused. A failed handshake is ERR_PROXY_UPSTREAM_CONNECT (the
 * parent could not be connected, so a route fails over to its next hop); an abort of `signal`
 * destroys both sockets and rejects.
 */
export function startParentTls(socket: Duplex, parent: ParentProxy, signal: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      servername: isIP(parent.host) ? undefined : parent.host,
      host: parent.host,
      ca: parent.ca,
      ALPNProtocols: ['http/1.1'],
    });
    const cleanup = () => {
      secure.off('secureConnect', onSecure);
      secure.off('error', onError);
      secure.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (error: ProxyError) => {
      cleanup();
      secure.on('error', ignore);
      socket.on('error', ignore);
      secure.destroy();
      socket.destroy();
      reject(error);
    };
    const onAbort = () => fail(new ProxyError('ERR_PROXY_ABORTED', `TLS with parent proxy ${parent.name} aborted`));
    const onError = (error: NodeJS.ErrnoException) =>
      fail(
        new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `cannot connect to parent proxy ${parent.name}: TLS handshake failed: ${error.code ?? error.message}`, {
          cause: error,
        }),
      );
    const onClose = () => fail(new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `cannot connect to parent proxy ${parent.name}: closed during the TLS handshake`));
    const onSecure = () => {
      cleanup();
      // Nothing may be read until the outbound pipeline (or the CONNECT exchange) owns the flow.
      secure.pause();
      resolve(secure);
    };
    // The TLS socket reports the TCP socket's failures; the raw one must not crash the process.
    socket.on('error', ignore);
    secure.once('secureConnect', onSecure);
    secure.on('error', onError);
    secure.once('close', onClose);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
