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

/** A running proxy: accepts connections and runs each through the plugin chain. */
export class ProxyServer {
  private readonly open = new Set<Connection>();
  private bound?: BoundAddress;
  private readonly boundExtra: BoundAddress[] = [];
  private idle?: () => void;
  /** The counters this server adds to. */
  readonly stats: ProxyStats;
  private readonly refusals = new Throttle(1000);

  constructor(private readonly options: ServerOptions) {
    this.stats = options.stats ?? createStats();
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
    const connection = new Connection(
      nextConnectionId++,
      socket,
      peer,
      this.options.plugins,
      this.options.logger,
      (done) => {
        this.open.delete(done);
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
    await this.options.listener.close();
    for (const listener of this.options.listeners ?? []) await listener.close();
    for (const connection of this.open) connection.drain();
    if (this.open.size > 0) await this.drain(gracePeriodMs);
    await Promise.all(this.options.plugins.map((plugin) => Promise.resolve(plugin.dispose?.())));
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
