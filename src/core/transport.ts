import type { Duplex } from 'node:stream';
import type { InjectionToken } from 'tsyringe';
import type { ClientDialect } from './dialect.js';

export type { ClientDialect };

// What the core needs from a transport. The core owns these interfaces and src/transports
// implements them, so imports point one way: from the transports to the core.

/** Where a connection goes: a host name, IPv4 or IPv6 address (without brackets) and a port. */
export interface Target {
  /** Name or address to dial; policies and the pool key on it as written. */
  host: string;
  /** TCP port to dial. */
  port: number;
}

/** Where an accepted connection came from. */
export interface PeerAddress {
  /** The client's IP address (IPv6 without brackets), for logs and address-based policies. */
  address: string;
  /** The client's source port, which tells apart connections from one address. */
  port: number;
}

/** Where a listener ended up listening: with port 0 asked for, the port the system picked. */
export interface BoundAddress {
  /** The address listened on (IPv6 without brackets). */
  host: string;
  /** The port listened on; clients and tests connect to it. */
  port: number;
  /** The URL scheme clients reach it with when it is not plain HTTP (`socks5`), for ready lines. */
  scheme?: string;
}

/** Accepts client connections; each socket must be half-open capable and start paused. */
export interface Listener {
  /**
   * Starts accepting; resolves with the bound address. A listener whose clients do not speak HTTP
   * passes the {@link ClientDialect} that answers them (see src/core/dialect.ts).
   */
  listen(onConnection: (socket: Duplex, peer: PeerAddress, dialect?: ClientDialect) => void): Promise<BoundAddress>;
  /** Stops accepting new connections (open ones are not touched). */
  close(): Promise<void>;
}

/** Opens upstream connections. Rejects with a ProxyError when it cannot (502 family; 503 when the proxy is out of descriptors). */
export interface Dialer {
  /** Resolves with a connected duplex; an abort of `signal` cancels the attempt. */
  dial(target: Target, signal: AbortSignal): Promise<Duplex>;
}

/** Token for the {@link Dialer} service; register another to dial through SOCKS, TLS, … */
export const Dialer: InjectionToken<Dialer> = Symbol('Dialer');
