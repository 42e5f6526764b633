import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Logger, StreamLogger } from '../core/logger.js';
import { createStats, type ProxyStats } from '../core/stats.js';
import { Throttle } from '../core/throttle.js';
import type { BoundAddress, Listener, PeerAddress } from '../core/transport.js';
import { isOutOfDescriptors, type TransportServices } from './transport-services.js';

/**
 * A plain TCP listener. Sockets arrive paused with half-close allowed, and with Nagle's algorithm
 * on: the proxy writes each message in one corked write, so Nagle costs HTTP nothing and saves
 * packets; a connection that becomes a tunnel turns it off (see ResponseSource).
 *
 * Out of file descriptors, accepting sheds load rather than failing: on Unix, libuv (1.45 and
 * later, so Node 20) closes its reserve descriptor, accepts and closes what is pending, and reports
 * nothing to JavaScript; new connections are accepted again as soon as descriptors free up. A
 * failed accept that Node does report (Windows, older libuv) arrives as the server's 'error'
 * event, which without a listener would kill the process: it is counted and warned about instead.
 */
export class TcpListener implements Listener {
  private server?: net.Server;
  private readonly logger: Logger;
  private readonly stats: ProxyStats;
  private readonly acceptWarnings = new Throttle(1000);

  constructor(
    private readonly host: string,
    private readonly port: number,
    services: TransportServices = {},
  ) {
    this.logger = services.logger ?? new StreamLogger();
    this.stats = services.stats ?? createStats();
  }

  listen(onConnection: (socket: Duplex, peer: PeerAddress) => void): Promise<BoundAddress> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) =>
      onConnection(socket, { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }),
    );
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        server.on('error', this.acceptFailed);
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

  /** Once listening, every server 'error' is a failed accept: the pending connection is lost, the listening socket is not. */
  private readonly acceptFailed = (error: NodeJS.ErrnoException): void => {
    this.stats.acceptErrors++;
    const held = this.acceptWarnings.take();
    if (held === undefined) return;
    const cause = isOutOfDescriptors(error.code) ? `out of file descriptors (${error.code})` : (error.code ?? error.message);
    this.logger.warn(`accept failed: ${cause}; a connection was dropped, still listening`, { acceptErrorsSinceLastWarning: held + 1 });
  };
}
