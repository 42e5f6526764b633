import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { Logger, StreamLogger } from '../core/logger.js';
import { createStats, type ProxyStats } from '../core/stats.js';
import { Throttle } from '../core/throttle.js';
import type { BoundAddress, Listener, PeerAddress } from '../core/transport.js';
import { TcpListener } from './tcp-listener.js';
import { checkTlsCredentials, type TlsCredentials } from './tls-credentials.js';
import type { TransportServices } from './transport-services.js';

/** How a {@link TlsListener} speaks TLS: its certificate and key, and how long a handshake may take. */
export interface TlsListenerOptions extends TlsCredentials {
  /**
   * Time a client has to complete its handshake, from accept, in ms (default 30000). 0 leaves
   * Node's own bound of 120000: a connection must not wait for a handshake forever.
   */
  handshakeTimeoutMs?: number;
}

/** The default of `handshakeTimeoutMs`: head-parser's default `headersTimeoutMs`. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

/** One TCP connection's addresses, both ends: unique among the open connections of a listener. */
const fourTuple = (socket: net.Socket) => `${socket.localAddress}|${socket.localPort}|${socket.remoteAddress}|${socket.remotePort}`;

/**
 * An HTTPS proxy's listener: clients speak TLS to the proxy, and the pipeline sees the plaintext,
 * exactly as from a {@link TcpListener}. It is one inside: the TCP listener accepts (and sheds
 * load out of descriptors as it does), then a tls.Server that never listens itself runs the
 * handshake (the 'connection' event tls documents for handing it connections). Sockets arrive
 * once secure, paused, with half-close allowed (end() sends close_notify then FIN, so a tunnel
 * closes when both directions have ended) and Nagle's algorithm on as from TcpListener
 * (setNoDelay reaches the TCP socket). The peer is the client's TCP address.
 *
 * A handshake that fails (not TLS, no protocol in common, the client leaving) or does not end
 * within `handshakeTimeoutMs` (in all: a client trickling bytes gets no more) closes the
 * connection before any plugin sees it; it is counted (`ProxyStats.tlsHandshakeErrors`) and
 * warned about at most once a second. `close()` also ends the handshakes in progress.
 *
 * The certificate and key are checked when constructed: a bad pair throws ERR_PROXY_CONFIG.
 */
export class TlsListener implements Listener {
  private readonly tcp: TcpListener;
  private readonly logger: Logger;
  private readonly stats: ProxyStats;
  private readonly handshakeWarnings = new Throttle(1000);
  /** Accepted TCP sockets whose handshake is not over, by their four-tuple (the secure socket has the same). */
  private readonly handshaking = new Map<string, net.Socket>();
  private closed = false;

  constructor(
    host: string,
    port: number,
    private readonly options: TlsListenerOptions,
    services: TransportServices = {},
  ) {
    checkTlsCredentials(options);
    this.tcp = new TcpListener(host, port, services);
    this.logger = services.logger ?? new StreamLogger();
    this.stats = services.stats ?? createStats();
  }

  listen(onConnection: (socket: Duplex, peer: PeerAddress) => void): Promise<BoundAddress> {
    const { cert, key, handshakeTimeoutMs = DEFAULT_HANDSHAKE_TIMEOUT_MS } = this.options;
    const server = tls.createServer({
      cert,
      key,
      // Its TLS sockets take these from it; the TCP sockets come paused and half-open from TcpListener.
      allowHalfOpen: true,
      pauseOnConnect: true,
      // Node's handshake timer is not reset by handshake bytes: a bound on the whole handshake.
      handshakeTimeout: handshakeTimeoutMs,
      // What the pipeline speaks; a client offering only h2 fails the handshake rather than its first request.
      ALPNProtocols: ['http/1.1'],
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      const id = fourTuple(socket);
      const raw = this.handshaking.get(id);
      this.handshaking.delete(id);
      if (this.closed) {
        socket.destroy();
        return;
      }
      // A TLS socket's own resetAndDestroy throws (its handle is no TCP handle); a reset (the faults
      // plugin's) means the TCP connection's RST, which then destroys the TLS socket too.
      if (raw) {
        socket.resetAndDestroy = () => {
          raw.resetAndDestroy();
          return socket;
        };
      }
      onConnection(socket, { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 });
    });
    server.on('tlsClientError', this.handshakeFailed);
    return this.tcp.listen((socket) => {
      const raw = socket as net.Socket;
      const id = fourTuple(raw);
      this.handshaking.set(id, raw);
      raw.once('close', () => {
        if (this.handshaking.get(id) === raw) this.handshaking.delete(id);
      });
      // The TLS socket wraps it and relays its errors (to 'tlsClientError' until secure).
      server.emit('connection', raw);
    });
  }

  close(): Promise<void> {
    this.closed = true;
    for (const raw of this.handshaking.values()) raw.destroy();
    this.handshaking.clear();
    return this.tcp.close();
  }

  /** Before the socket is handed over, every error is its handshake's: close it, count it, warn once a second. */
  private readonly handshakeFailed = (error: NodeJS.ErrnoException, socket: tls.TLSSocket): void => {
    const client = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.destroy();
    if (this.closed) return; // ended by close(), not by the client
    this.stats.tlsHandshakeErrors++;
    const held = this.handshakeWarnings.take();
    if (held === undefined) return;
    this.logger.warn(`TLS handshake failed: ${error.code ?? error.message.split('\n')[0]}; connection closed`, {
      client,
      tlsHandshakeErrorsSinceLastWarning: held + 1,
    });
  };
}
