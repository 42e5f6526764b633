import type { Duplex } from 'node:stream';
import type { ProxyError } from './errors.js';
import type { ResponseHead } from './http/response-framing.js';

/**
 * What a dialect reads of the exchange it answers; an `Exchange` is one. (A structural type, so
 * that transport.ts, which names the dialect, does not import the exchange and its context.)
 */
export interface DialectExchange {
  /** Whether the request was a CONNECT, whose 2xx starts a tunnel. */
  readonly isConnect: boolean;
  /** The upstream connection, once dialled: its local address is what a SOCKS5 success reply names. */
  readonly upstream?: Duplex;
}

/**
 * How a connection's client speaks when it does not speak HTTP (a SOCKS5 client). A listener that
 * ran its own handshake hands the core the socket with a synthesized request in front of the
 * client's bytes, and this dialect turns the answer to that request back into the client's
 * protocol. The client sink calls it for each final response head (interim heads are not
 * written) and writes its bytes in the head's place; the body of an answer that does not start a
 * tunnel is dropped. Without a dialect (every HTTP connection) nothing of this runs.
 */
export interface ClientDialect {
  /**
   * The bytes the client gets in place of `head`. `error` is why the proxy answered instead of
   * the upstream (a refusal, a failed dial: its `code`, and the errno code in its `cause`);
   * `exchange` is undefined for a failure outside any request (the core's last-resort answer).
   */
  reply(head: ResponseHead, exchange: DialectExchange | undefined, error: ProxyError | undefined): Buffer;
}
