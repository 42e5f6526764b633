import type { Duplex } from 'node:stream';
import type { InjectionToken } from 'tsyringe';
import type { Target } from './context.js';

// What the core needs from a transport. The core owns these interfaces and src/transports
// implements them, so imports point one way: from the transports to the core.

/** Where an accepted connection came from. */
export interface PeerAddress {
  address: string;
  port: number;
}

/** Accepts client connections; each socket must be half-open capable and start paused. */
export interface Listener {
  /** Starts accepting; resolves with the bound address. */
  listen(onConnection: (socket: Duplex, peer: PeerAddress) => void): Promise<{ host: string; port: number }>;
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
