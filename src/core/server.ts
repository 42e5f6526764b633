import type { Duplex } from 'node:stream';
import { config as rxjsConfig } from 'rxjs';
import { Connection } from './connection.js';
import type { Logger } from './logger.js';
import type { ProxyPlugin } from './plugin.js';
import { createStats, type ProxyStats } from './stats.js';
import { Throttle } from './throttle.js';
import type { BoundAddress, Listener } from './transport.js';

/** How a {@link ProxyServer} runs. */
export interface ServerOptions {
  /** The chain, already resolved. */
  plugins: readonly ProxyPlugin[];
  /** Where connections come from. */
  listener: Listener;
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
  private idle?: () => void;
  /** The counters this server adds to. */
  readonly stats: ProxyStats;
  private readonly refusals = new Throttle(1000);

  constructor(private readonly options: ServerOptions) {
    this.stats = options.stats ?? createStats();
    // Every subscription handles its errors; this is the last net, so a bug logs, never kills.
    rxjsConfig.onUnhandledError = (error) => options.logger.error('unhandled RxJS error', { message: String(error) });
  }

  /** Starts accepting; resolves with the bound address. */
  async listen(): Promise<BoundAddress> {
    const max = this.options.maxConnections ?? Infinity;
    this.bound = await this.options.listener.listen((socket, peer) => {
      if (this.open.size >= max) return this.refuse(socket);
      const connection = new Connection(nextConnectionId++, socket, peer, this.options.plugins, this.options.logger, (done) => {
        this.open.delete(done);
        if (this.open.size === 0) this.idle?.();
      });
      this.open.add(connection);
      connection.start();
    });
    return this.bound;
  }

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
