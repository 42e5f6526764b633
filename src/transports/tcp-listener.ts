import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Listener, PeerAddress } from './listener.js';

/**
 * A plain TCP listener. Sockets arrive paused with half-close allowed, and with Nagle's algorithm
 * on: the proxy writes each message in one corked write, so Nagle costs HTTP nothing and saves
 * packets; a connection that becomes a tunnel turns it off (see ResponseSource).
 */
export class TcpListener implements Listener {
  private server?: net.Server;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  listen(onConnection: (socket: Duplex, peer: PeerAddress) => void): Promise<{ host: string; port: number }> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) =>
      onConnection(socket, { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }),
    );
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        const bound = server.address() as net.AddressInfo;
        resolve({ host: bound.address, port: bound.port });
      });
    });
  }

  close(): Promise<void> {
    // The listening socket closes at once; net's own callback would also wait for every open
    // connection, which is the server's grace period to manage, not the listener's.
    if (this.server?.listening) this.server.close();
    return Promise.resolve();
  }
}
