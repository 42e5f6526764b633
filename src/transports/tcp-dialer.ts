import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../core/errors.js';
import type { Target } from '../core/context.js';
import type { Dialer } from './dialer.js';

/** Words for the errno codes a client can act on; anything else is shown by its code. */
const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name resolution failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
};

/** Dials plain TCP with half-close allowed (Nagle stays on until a connection becomes a tunnel). */
export class TcpDialer implements Dialer {
  dial(target: Target, signal: AbortSignal): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const where = net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
      const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
      const onAbort = () => {
        socket.destroy();
        reject(new ProxyError('ERR_PROXY_ABORTED', `dial to ${where} aborted`));
      };
      const onError = (error: NodeJS.ErrnoException) => {
        signal.removeEventListener('abort', onAbort);
        const cause = (error.code && CAUSES[error.code]) ?? error.code ?? error.message;
        reject(new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `cannot connect to ${where}: ${cause}`, { cause: error }));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        signal.removeEventListener('abort', onAbort);
        // Nothing may be read until the outbound pipeline subscribes and owns the flow.
        socket.pause();
        resolve(socket);
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
