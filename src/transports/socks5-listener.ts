import type { Duplex } from 'node:stream';
import type { ClientDialect } from '../core/dialect.js';
import { Logger, StreamLogger } from '../core/logger.js';
import { lingeringClose } from '../core/respond.js';
import { guardErrors } from '../core/source.js';
import { createStats, type ProxyStats } from '../core/stats.js';
import type { BoundAddress, Listener, PeerAddress, Target } from '../core/transport.js';
import {
  AUTH_FAILED,
  AUTH_OK,
  authorityOf,
  methodReply,
  parseCredentials,
  parseGreeting,
  parseRequest,
  Socks5Method,
  type Socks5Credentials,
  type Step,
} from './socks5-handshake.js';
import { Socks5Dialect } from './socks5-replies.js';
import { TcpListener } from './tcp-listener.js';
import type { TransportServices } from './transport-services.js';

/** Checks a user name and password; `proxy-auth` is one (its `verify`). */
export interface CredentialsVerifier {
  /** Resolves true when the password is the user's. */
  verify(user: string, password: string): Promise<boolean>;
}

/** How a {@link Socks5Listener} runs. */
export interface Socks5ListenerOptions {
  /** Address to listen on. */
  host: string;
  /** Port to listen on; 0 takes a free one. */
  port: number;
  /** How long a client has for its whole handshake, from accept, in ms (0: no limit); then it is closed. */
  handshakeTimeoutMs: number;
  /** When set, username/password (RFC 1929) is required and checked by it; else no authentication. */
  verifier?: CredentialsVerifier;
}

/** One dialect for every connection: it keeps no state. */
const DIALECT: ClientDialect = new Socks5Dialect();
const EMPTY = Buffer.alloc(0);

/**
 * A SOCKS5 listener (RFC 1928, RFC 1929): runs the handshake on each accepted socket, then hands
 * the socket to the core as an ordinary connection whose first bytes are a synthesized
 * `CONNECT host:port` request (with `Proxy-Authorization` carrying the SOCKS credentials, and
 * `Connection: close`) followed by whatever the client sent after its request. The chain runs
 * on it as on any CONNECT; the {@link Socks5Dialect} turns the answer into the SOCKS reply.
 * Handshakes in progress count toward nothing in the core: each is bounded by the handshake
 * timeout, and counted in `socksHandshakeErrors` when it ends without a connection.
 */
export class Socks5Listener implements Listener {
  private readonly tcp: TcpListener;
  private readonly handshakes = new Set<Handshake>();
  private closed = false;
  /** @internal */
  readonly stats: ProxyStats;
  /** @internal */
  readonly logger: Logger;

  constructor(
    /** @internal */
    readonly options: Socks5ListenerOptions,
    services: TransportServices = {},
  ) {
    this.tcp = new TcpListener(options.host, options.port, services);
    this.stats = services.stats ?? createStats();
    this.logger = services.logger ?? new StreamLogger();
  }

  async listen(onConnection: (socket: Duplex, peer: PeerAddress, dialect?: ClientDialect) => void): Promise<BoundAddress> {
    this.closed = false;
    let bound: BoundAddress;
    try {
      bound = await this.tcp.listen((socket, peer) => {
        const handshake = new Handshake(socket, peer, this, onConnection);
        this.handshakes.add(handshake);
        handshake.start();
      });
    } catch (error) {
      throw new Error(`socks5 listener on ${this.options.host}:${this.options.port}: ${(error as Error).message}`, { cause: error });
    }
    return { ...bound, scheme: 'socks5' };
  }

  /** Stops accepting, and closes the handshakes still in progress (no connection was made of them yet). */
  close(): Promise<void> {
    this.closed = true;
    for (const handshake of this.handshakes) handshake.abort();
    return this.tcp.close();
  }

  /** @internal A handshake ended, handed over or not. */
  ended(handshake: Handshake): void {
    this.handshakes.delete(handshake);
  }

  /** @internal Whether the listener was closed (a handshake that finishes now is dropped). */
  get isClosed(): boolean {
    return this.closed;
  }
}

/** Where a handshake is. */
type Phase = 'greeting' | 'credentials' | 'verifying' | 'request' | 'over';

/** One client's handshake, from accept until its socket is handed over or closed. */
class Handshake {
  private phase: Phase = 'greeting';
  private bytes: Buffer = EMPTY;
  private timer?: NodeJS.Timeout;
  private credentials?: Socks5Credentials;

  constructor(
    private readonly socket: Duplex,
    private readonly peer: PeerAddress,
    private readonly listener: Socks5Listener,
    private readonly onConnection: (socket: Duplex, peer: PeerAddress, dialect?: ClientDialect) => void,
  ) {}

  start(): void {
    const { socket } = this;
    guardErrors(socket);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.once('close', this.onClose);
    const { handshakeTimeoutMs } = this.listener.options;
    if (handshakeTimeoutMs > 0) this.timer = setTimeout(this.onTimeout, handshakeTimeoutMs);
    socket.resume();
  }

  /** The listener closes: a handshake not finished yet goes. */
  abort(): void {
    if (this.phase === 'over') return;
    this.phase = 'over';
    this.socket.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.phase === 'over') return;
    this.bytes = this.bytes.length === 0 ? chunk : Buffer.concat([this.bytes, chunk]);
    this.advance();
  };

  private readonly onEnd = (): void => this.fail('the client closed during the handshake');

  private readonly onTimeout = (): void => this.fail(`handshake not complete within ${this.listener.options.handshakeTimeoutMs} ms`);

  private readonly onClose = (): void => {
    clearTimeout(this.timer);
    if (this.phase !== 'over') this.fail('the client connection closed during the handshake');
    this.listener.ended(this);
  };

  /** Parses what arrived, as far as it goes; each message is answered as soon as it is complete. */
  private advance(): void {
    while (this.parseNext());
  }

  /** One message: true when one was taken, false when more bytes are needed or the handshake ended or waits. */
  private parseNext(): boolean {
    switch (this.phase) {
      case 'greeting':
        return this.take(parseGreeting(this.bytes), (methods) => this.choose(methods));
      case 'credentials':
        return this.take(parseCredentials(this.bytes), (credentials) => this.check(credentials));
      case 'request':
        return this.take(parseRequest(this.bytes), (target) => this.handOver(target));
      default:
        return false;
    }
  }

  /** Applies a parse step: consumes the message and runs `next`, or fails, or waits. */
  private take<T>(step: Step<T>, next: (value: T) => void): boolean {
    if (step.kind === 'more') return false;
    if (step.kind === 'bad') {
      this.fail(step.why, step.reply);
      return false;
    }
    this.bytes = this.bytes.subarray(step.length);
    next(step.value);
    return true;
  }

  /** Method selection: username/password when a verifier is set (and only then), else no authentication. */
  private choose(methods: readonly number[]): void {
    const wanted = this.listener.options.verifier ? Socks5Method.PASSWORD : Socks5Method.NONE;
    if (!methods.includes(wanted)) {
      return this.fail(`no acceptable authentication method offered (${methods.join(',')})`, methodReply(Socks5Method.NO_ACCEPTABLE));
    }
    this.socket.write(methodReply(wanted));
    this.phase = wanted === Socks5Method.PASSWORD ? 'credentials' : 'request';
  }

  /** RFC 1929: the client is held while the verifier (bcrypt) runs. */
  private check(credentials: Socks5Credentials): void {
    this.phase = 'verifying';
    this.socket.pause();
    this.listener.options.verifier!.verify(credentials.user, credentials.password).then(
      (ok) => this.verified(ok ? credentials : undefined),
      (error: unknown) => {
        this.listener.logger.error('socks5: checking credentials failed', { message: String(error) });
        this.verified(undefined);
      },
    );
  }

  private verified(credentials: Socks5Credentials | undefined): void {
    if (this.phase !== 'verifying') return; // closed meanwhile
    if (!credentials) return this.fail('wrong user name or password', AUTH_FAILED);
    this.credentials = credentials;
    this.socket.write(AUTH_OK);
    this.phase = 'request';
    this.socket.resume();
    this.advance();
  }

  /** The request is complete: the socket becomes a connection of the core, its CONNECT synthesized in front of what followed. */
  private handOver(target: Target): void {
    const { socket } = this;
    this.phase = 'over';
    clearTimeout(this.timer);
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('close', this.onClose);
    socket.pause();
    this.listener.ended(this);
    if (this.listener.isClosed) return void socket.destroy();
    const head = Buffer.from(synthesizedConnect(target, this.credentials), 'latin1');
    socket.unshift(this.bytes.length === 0 ? head : Buffer.concat([head, this.bytes]));
    this.bytes = EMPTY;
    this.onConnection(socket, this.peer, DIALECT);
  }

  /** Ends the handshake without a connection: the reply the RFC defines (if any), then close; counted. */
  private fail(_why: string, reply?: Buffer): void {
    if (this.phase === 'over') return;
    this.phase = 'over';
    this.bytes = EMPTY;
    clearTimeout(this.timer);
    this.listener.stats.socksHandshakeErrors++;
    const { socket } = this;
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    if (!reply || socket.destroyed || socket.writableEnded) return void socket.destroy();
    // The client may still be sending (the rest of a request answered early): read and drop it
    // until its FIN, so our reply is not lost to a reset.
    socket.end(reply);
    lingeringClose(socket);
  }
}

/** The CONNECT request a SOCKS5 request stands for, as head-parser reads it. */
export function synthesizedConnect(target: Target, credentials?: Socks5Credentials): string {
  const authority = authorityOf(target);
  const authorization = credentials ? `Proxy-Authorization: Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}\r\n` : '';
  // `Connection: close`: a refused CONNECT closes the connection after its reply, and whatever
  // the client sent after its request is never read as HTTP.
  return `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n${authorization}\r\n`;
}
