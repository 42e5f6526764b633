import { createRequire } from 'node:module';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import { loadConfig } from './core/config.js';
import { Logger, StreamLogger } from './core/logger.js';
import { resolvePlugins, type PluginSpec } from './core/registry.js';
import { ProxyServer } from './core/server.js';
import { createStats, ProxyStats } from './core/stats.js';
import { Dialer, type Listener } from './core/transport.js';
import { DEFAULT_CHAIN, PLUGIN_CATALOG } from './plugins/index.js';
import { MetricsRegistry } from './plugins/metrics-registry.js';
import { socks5ListenerFor, type SocksOptions } from './transports/socks5-chain.js';
import { TcpDialer } from './transports/tcp-dialer.js';
import { TcpListener } from './transports/tcp-listener.js';

/** prom-client, loaded on first use (it is CommonJS, so a synchronous require serves a factory). */
const loadPromClient = () => createRequire(import.meta.url)('prom-client') as typeof import('prom-client');

/** How to compose a proxy in code. Every field has a default. */
export interface ProxyOptions {
  /** The chain: built-in names, plugins.json-style entries, plugin classes or instances. */
  plugins?: readonly PluginSpec[];
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on; 0 takes a free one (default 8080). */
  port?: number;
  /** Container to resolve services from; register your own Logger, Dialer or MetricsRegistry there first. */
  container?: DependencyContainer;
  /** Folder that plugin `module` paths are relative to (default: the working directory). */
  baseDir?: string;
  /** Names the plugin list in error messages (default "plugins"). */
  source?: string;
  /** Grace period of `close()`, in ms (default 10000). */
  gracePeriodMs?: number;
  /** Where connections come from (default: TCP on host:port). */
  listener?: Listener;
  /** Client connections open at once; over it a new connection is closed at accept (default 10000). */
  maxConnections?: number;
  /** A SOCKS5 listener beside the HTTP one, whose connections run through the same chain (default: none); see docs/socks5.md. */
  socks?: SocksOptions;
}

/**
 * Builds a proxy: registers the default services where the container has none, resolves and
 * checks the plugin chain, and returns a server that is not listening yet.
 */
export async function createProxy(options: ProxyOptions = {}): Promise<ProxyServer> {
  const container = (options.container ?? rootContainer).createChildContainer();
  if (!container.isRegistered(Logger, true)) container.registerInstance(Logger, new StreamLogger());
  if (!container.isRegistered(ProxyStats, true)) container.registerInstance(ProxyStats, createStats());
  // The transports report running out of descriptors to the same logger and counters as the core.
  const services = { logger: container.resolve(Logger), stats: container.resolve(ProxyStats) };
  if (!container.isRegistered(Dialer, true)) container.registerInstance(Dialer, new TcpDialer(services));
  if (!container.isRegistered(MetricsRegistry, true)) {
    // Created (and prom-client loaded) only when something asks for it: the metrics plugin.
    container.register(MetricsRegistry, { useFactory: instanceCachingFactory(() => new (loadPromClient().Registry)()) });
  }
  const plugins = await resolvePlugins(options.plugins ?? DEFAULT_CHAIN, {
    catalog: PLUGIN_CATALOG,
    container,
    baseDir: options.baseDir ?? process.cwd(),
    source: options.source ?? 'plugins',
  });
  return new ProxyServer({
    plugins,
    listener: options.listener ?? new TcpListener(options.host ?? '127.0.0.1', options.port ?? 8080, services),
    listeners: options.socks && [socks5ListenerFor(options.socks, plugins, services)],
    logger: services.logger,
    stats: services.stats,
    gracePeriodMs: options.gracePeriodMs ?? 10_000,
    maxConnections: options.maxConnections ?? 10_000,
  });
}

/** Builds a proxy from a plugins.json file (module paths relative to it). */
export async function createProxyFromConfig(file: string, options: Omit<ProxyOptions, 'plugins' | 'baseDir' | 'source'> = {}) {
  const config = await loadConfig(file);
  return createProxy({ ...options, plugins: config.entries, baseDir: config.baseDir, source: config.source });
}
