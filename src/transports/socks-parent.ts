import type { Duplex } from 'node:stream';
import { SocksClient, SocksClientError } from 'socks';
import type { Target } from '../core/context.js';
import { ProxyError } from '../core/errors.js';
import type { ParentProxy } from '../core/transport.js';
import { ignore, parentError } from './parent-connect.js';

/** What each SOCKS5 reply code means (RFC 1928 §6), as messages say it. */
const REPLIES: readonly string[] = [
  'succeeded',
  'general failure',
  'connection not allowed by ruleset',
  'network unreachable',
  'host unreachable',
  'connection refused',
  'TTL expired',
  'command not supported',
  'address type not supported',
];

/** The `socks` package's names of the reply codes (its Socks5Response enum), to recover the code. */
const REPLY_NAMES: readonly string[] = [
  'Granted',
  'Failure',
  'NotAllowed',
  'NetworkUnreachable',
  'HostUnreachable',
  'ConnectionRefused',
  'TTLExpired',
  'CommandNotSupported',
  'AddressNotSupported',
];

/**
 * Asks a SOCKS5 parent, over `socket` (TCP, connected to it), to CONNECT to `target`: the host
 * goes as a name (address type domain) so the parent resolves it; user/password authentication
 * (RFC 1929) when the parent has credentials. Resolves with the same socket, paused, any bytes
 * after the reply put back for the upstream. A reply other than success, failed authentication
 * or a close during the handshake rejects with ERR_PROXY_PARENT naming the reply; an abort of
 * `signal` destroys the socket and rejects.
 */
export async function connectThroughSocks(socket: Duplex, target: Target, parent: ParentProxy, signal: AbortSignal): Promise<Duplex> {
  socket.on('error', ignore); // the socks client listens only while it negotiates
  const onAbort = () => socket.destroy();
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    const established = SocksClient.createConnection({
      proxy: { host: parent.host, port: parent.port, type: 5, userId: parent.username, password: parent.password },
      command: 'connect',
      destination: { host: target.host, port: target.port },
      existing_socket: socket,
    });
    // The TCP dialer hands the socket over paused; the socks client reads with a 'data' listener.
    socket.resume();
    await established;
  } catch (error) {
    socket.destroy();
    if (signal.aborted) throw new ProxyError('ERR_PROXY_ABORTED', `SOCKS5 handshake with parent proxy ${parent.name} aborted`);
    throw parentError(parent, socksFailure(error), error);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  return settle(socket);
}

/**
 * Once established, the socks client re-emits the bytes it read past the reply and resumes the
 * socket on the next turn of the event loop. Those bytes are caught here, the socket paused
 * again, and they are put back: nothing may be read until the outbound pipeline owns the flow.
 */
function settle(socket: Duplex): Promise<Duplex> {
  const early: Buffer[] = [];
  const keep = (chunk: Buffer) => void early.push(chunk);
  socket.on('data', keep);
  return new Promise((resolve) => {
    setImmediate(() => {
      socket.off('data', keep);
      socket.pause();
      if (early.length > 0) socket.unshift(early.length === 1 ? early[0]! : Buffer.concat(early));
      resolve(socket);
    });
  });
}

/** What a failed SOCKS5 handshake means, in words, from the socks package's error message. */
function socksFailure(error: unknown): string {
  const message = error instanceof SocksClientError || error instanceof Error ? error.message : String(error);
  const rejected = /rejected connection - (\w+)/.exec(message);
  if (rejected) {
    const code = REPLY_NAMES.indexOf(rejected[1]!);
    return code > 0 ? `refused: ${REPLIES[code]} (reply ${code})` : `refused: ${rejected[1]}`;
  }
  if (/Authentication failed/i.test(message)) return 'refused: authentication failed';
  if (/no accepted authentication type/i.test(message)) return 'refused: no acceptable authentication method';
  if (/Socket closed/i.test(message)) return 'closed the connection during the SOCKS5 handshake';
  return `failed the SOCKS5 handshake: ${message}`;
}
