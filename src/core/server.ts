import type { Duplex } from 'node:stream';
import { config as rxjsConfig } from 'rxjs';
import { Connection } from './connection.js';
import type { ClientDialect } from './dialect.js';
import type { Logger } from './logger.js';
import type { ProxyPlugin } from './plugin.js';
import { createStats, type ProxyStats } from './stats.js';
import { Throttle } from './throttle.js';
import type { BoundAddress, Listener, PeerAddress } from './transport.js';

/** How a {@link ProxyServer} runs. */
export interface ServerOptions {
  /** The chain, already resolved. */
  plugins: readonly ProxyPlugin[];
  /** Where connections come from. */
  listener: Listener;
  /** More listeners (a SOCKS5 one): their connections share the chain, `maxConnections` and shutdown. */
  listeners?: readonly Listener[];
  /** Where the core logs what no connection can report. */
  logger: Logger;
  /** How long `close()` lets open connections finish before destroying them, in ms. */
  gracePeriodMs: number;
  /** Client connections open at once; a connection over it is closed at accept (default: no cap). */
  maxConnections?: number;
  /** Counters of refused connections and the like (default: fresh ones). */
  stats?: ProxyStats;
}

let nextConnectionId = 1;

/**
 * A resolved chain as a value: its plugins and the connections that started on it. The server
 * hands the current one to new connections; a connection keeps the one it started with; a chain
 * replaced by `reload()` is disposed when its last connection closes.
 */
interface Chain {
  readonly plugins: readonly ProxyPlugin[];
  /** Connections that started on this chain and are still open. */
  open: number;
  /** Set once its plugins are being disposed. */
  disposed?: Promise<void>;
}

/** A running proxy: accepts connections and runs each through the plugin chain. */
export class ProxyServer {
  private readonly open = new Set<Connection>();
  private bound?: BoundAddress;
  private readonly boundExtra: BoundAddress[] = [];
  private idle?: () => void;
  /** The counters this server adds to. */
  readonly stats: ProxyStats;
  private readonly refusals = new Throttle(1000);
  /** The chain new connections start on. */
  private chain: Chain;
  /** Chains replaced by `reload()` whose connections are not all closed yet, or that are being disposed. */
  private readonly retired = new Set<Chain>();
  private closing = false;

  constructor(private readonly options: ServerOptions) {
    this.stats = options.stats ?? createStats();
    this.chain = { plugins: options.plugins, open: 0 };
    // Every subscription handles its errors; this is the last net, so a bug logs, never kills.
    rxjsConfig.onUnhandledError = (error) => options.logger.error('unhandled RxJS error', { message: String(error) });
  }

  /** Starts accepting on every listener; resolves with the main listener's bound address. */
  async listen(): Promise<BoundAddress> {
    this.bound = await this.options.listener.listen(this.accept);
    try {
      for (const listener of this.options.listeners ?? []) this.boundExtra.push(await listener.listen(this.accept));
    } catch (error) {
      await Promise.all([this.options.listener, ...(this.options.listeners ?? [])].map((listener) => listener.close()));
      throw error;
    }
    return this.bound;
  }

  /** Every listener's connections arrive here (one function, not one per listener or connection). */
  private readonly accept = (socket: Duplex, peer: PeerAddress, dialect?: ClientDialect): void => {
    if (this.open.size >= (this.options.maxConnections ?? Infinity)) return this.refuse(socket);
    const chain = this.chain;
    chain.open++;
    const connection = new Connection(
      nextConnectionId++,
      socket,
      peer,
      chain.plugins,
      this.options.logger,
      (done) => {
        this.open.delete(done);
        if (--chain.open === 0 && this.retired.has(chain)) void this.dispose(chain); // never rejects
        if (this.open.size === 0) this.idle?.();
      },
      dialect,
    );
    this.open.add(connection);
    connection.start();
  };

  /** Over the cap: closed at once, nothing read and nothing dialled; counted, and logged once a second. */
  private refuse(socket: Duplex): void {
    socket.destroy();
    this.stats.connectionsRefused++;
    const held = this.refusals.take();
    if (held !== undefined) {
      this.options.logger.warn(`connection refused: ${this.open.size} connections open (maxConnections)`, { refusedSinceLastWarning: held + 1 });
    }
  }

  /** The bound address, once listening. */
  address(): BoundAddress | undefined {
    return this.bound;
  }

  /** The plugins new connections start on (the last chain given to `reload()`, or the first). */
  get plugins(): readonly ProxyPlugin[] {
    return this.chain.plugins;
  }

  /**
   * Puts a new resolved chain in force: connections accepted from now on run through `plugins`;
   * open ones finish on the chain they started with, whose plugins are disposed when its last
   * connection closes (at once when none is open). Throws once `close()` has begun (the caller
   * still owns `plugins` then).
   */
  reload(plugins: readonly ProxyPlugin[]): void {
    if (this.closing) throw new Error('the server is closing');
    const old = this.chain;
    this.chain = { plugins, open: 0 };
    this.retired.add(old);
    if (old.open === 0) void this.dispose(old);
  }

  /** Every bound address, once listening: the main listener's first, then the others' in order. */
  addresses(): BoundAddress[] {
    return this.bound ? [this.bound, ...this.boundExtra] : [];
  }

  /** How many connections are open now. */
  get connections(): number {
    return this.open.size;
  }

  /**
   * Stops accepting, lets open connections finish for the grace period (default from the
   * options), then destroys what is left. Resolves when every connection has closed and every
   * plugin is disposed (a log written out).
   */
  async close(gracePeriodMs = this.options.gracePeriodMs): Promise<void> {
    this.closing = true;
    await this.options.listener.close();
    for (const listener of this.options.listeners ?? []) await listener.close();
    for (const connection of this.open) connection.drain();
    if (this.open.size > 0) await this.drain(gracePeriodMs);
    // Every connection has closed: the retired chains are disposed or being disposed.
    await Promise.all([this.dispose(this.chain), ...[...this.retired].map((chain) => this.dispose(chain))]);
  }

  /** Disposes the plugins of a chain once; a plugin whose dispose fails is logged, the others still run. */
  private dispose(chain: Chain): Promise<void> {
    chain.disposed ??= Promise.all(
      chain.plugins.map(async (plugin) => {
        try {
          await plugin.dispose?.();
        } catch (error) {
          this.options.logger.error(`plugin ${plugin.name} failed in dispose`, { message: String(error) });
        }
      }),
    ).then(() => {
      this.retired.delete(chain);
    });
    return chain.disposed;
  }

  private drain(gracePeriodMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const connection of this.open) connection.destroy();
      }, gracePeriodMs);
      this.idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
