import type { Duplex } from 'node:stream';

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
