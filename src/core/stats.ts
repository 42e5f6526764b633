import type { InjectionToken } from 'tsyringe';

/**
 * Counters of events that no single connection reports: connections refused at accept, accept
 * failures, log and capture records dropped, failed TLS handshakes. The core and plugins add to them; the metrics plugin exports
 * each as `proxyline_<snake_name>_total`. One instance per proxy, shared through the container.
 */
export interface ProxyStats {
  /** Connections closed at accept because `maxConnections` were already open. */
  connectionsRefused: number;
  /**
   * Failed accepts that Node reported (EMFILE, ENFILE, …): the kernel's connection was dropped. On
   * Linux, Node 20's libuv sheds EMFILE/ENFILE accepts itself without reporting them, so there
   * this stays 0 and `dialNoResources` is the sign of exhaustion.
   */
  acceptErrors: number;
  /** Upstream dials that failed for lack of file descriptors (answered 503). */
  dialNoResources: number;
  /** Access-log records dropped because their destination could not keep up. */
  logDropped: number;
  /** Capture records dropped because their file could not keep up (or could not be opened). */
  captureDropped: number;
  /**
   * Client connections to a TLS listener closed before their handshake completed: not TLS, a
   * rejected handshake, the client leaving, or no handshake within the head timeout.
   */
  tlsHandshakeErrors: number;
  /** Calls of `rate-limit` to a shared (Redis) store that failed or timed out, answered by its `onError`. */
  rateLimitStoreErrors: number;
  /** SOCKS5 handshakes that ended without a connection handed to the chain (malformed, refused, stalled, cut). */
  socksHandshakeErrors: number;
}

/** Token for the {@link ProxyStats} service. */
export const ProxyStats: InjectionToken<ProxyStats> = Symbol('ProxyStats');

/** Fresh counters, all zero. */
export function createStats(): ProxyStats {
  return {
    connectionsRefused: 0,
    acceptErrors: 0,
    dialNoResources: 0,
    logDropped: 0,
    captureDropped: 0,
    tlsHandshakeErrors: 0,
    rateLimitStoreErrors: 0,
    socksHandshakeErrors: 0,
  };
}
