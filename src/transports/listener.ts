import type { Duplex } from 'node:stream';

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
}

/** Accepts client connections; each socket must be half-open capable and start paused. */
export interface Listener {
  /** Starts accepting; resolves with the bound address. */
  listen(onConnection: (socket: Duplex, peer: PeerAddress) => void): Promise<BoundAddress>;
  /** Stops accepting new connections (open ones are not touched). */
  close(): Promise<void>;
}
