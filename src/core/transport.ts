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

/**
 * A parent proxy an upstream is reached through: plain data for the dialer (the core knows
 * nothing of how each protocol is spoken).
 */
export interface ParentProxy {
  /** `http` (TCP), `https` (TLS to the parent) or `socks5` (names resolved by the parent). */
  readonly protocol: 'http' | 'https' | 'socks5';
  /** The parent's name or address (IPv6 without brackets). */
  readonly host: string;
  /** The parent's port. */
  readonly port: number;
  /** User name for the parent (Basic Proxy-Authorization, or SOCKS5 user/password). */
  readonly username?: string;
  /** Password for the parent; never shown in messages or logs. */
  readonly password?: string;
  /** How messages and logs name the parent: `host:port`, `(socks5)` added for SOCKS; no credentials. */
  readonly name: string;
  /** Tells parents apart in the upstream pool (credentials included in a form that does not reveal them). */
  readonly key: string;
  /** PEM certificates an `https` parent's certificate must chain to (instead of the system's CAs). */
  readonly ca?: string | Buffer;
}

/** One way to reach an upstream: straight to it, or through a parent proxy. */
export type UpstreamHop = 'direct' | ParentProxy;

/** Asks a dialer to go through a parent proxy rather than straight to the target. */
export interface DialVia {
  /** The parent to go through. */
  readonly parent: ParentProxy;
  /**
   * For an http(s) parent: true to tunnel to the target through the parent's CONNECT, false to
   * connect to the parent itself (plain HTTP is then sent to it in absolute-form). A SOCKS5
   * parent always tunnels.
   */
  readonly tunnel: boolean;
}

/**
 * Opens upstream connections. Rejects with a ProxyError when it cannot (502 family; 503 when the
 * proxy is out of descriptors). A dialer that ignores `via` (say, a user's own registered in the
 * container) always connects straight to the target, so `upstream-proxy` routes have no effect.
 */
export interface Dialer {
  /**
   * Resolves with a connected duplex; an abort of `signal` cancels the attempt; `via` goes through
   * a parent proxy. `signal` means something only until the promise settles: remove your 'abort'
   * listeners by then, as the proxy reuses for a later dial a signal that has none left.
   */
  dial(target: Target, signal: AbortSignal, via?: DialVia): Promise<Duplex>;
}

/** Token for the {@link Dialer} service; register another to dial through SOCKS, TLS, … */
export const Dialer: InjectionToken<Dialer> = Symbol('Dialer');
