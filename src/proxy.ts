import { createRequire } from 'node:module';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import { AdminRouteTable, AdminRoutes, StagedRoutes } from './core/admin-routes.js';
import { loadConfig } from './core/config.js';
import { Logger, StreamLogger } from './core/logger.js';
import type { ProxyPlugin } from './core/plugin.js';
import { resolveChain, resolvePlugins, type PluginSpec, type ResolvedPlugin } from './core/registry.js';
import { ProxyServer } from './core/server.js';
import { createStats, ProxyStats } from './core/stats.js';
import { Dialer, type Listener } from './core/transport.js';
import { DEFAULT_CHAIN, HeadParserPlugin, PLUGIN_CATALOG } from './plugins/index.js';
import { MetricsRegistry } from './plugins/metrics-registry.js';
import { ParentDialer } from './transports/parent-dialer.js';
import { socks5ListenerFor, type SocksOptions } from './transports/socks5-chain.js';
import { TcpDialer } from './transports/tcp-dialer.js';
import { TcpListener } from './transports/tcp-listener.js';
import type { TlsCredentials } from './transports/tls-credentials.js';
import { TlsListener } from './transports/tls-listener.js';

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
  /** Where connections come from (default: TCP on host:port, or TLS with `tls`). */
  listener?: Listener;
  /**
   * Serve clients over TLS on host:port (an HTTPS proxy) with this PEM certificate and key; the
   * handshake is bounded by head-parser's `headersTimeoutMs`. A bad pair throws ERR_PROXY_CONFIG.
   * Ignored when `listener` is given.
   */
  tls?: TlsCredentials;
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
  const container = proxyServices(options.container);
  const services = { logger: container.resolve(Logger), stats: container.resolve(ProxyStats) };
  const plugins = await resolvePlugins(options.plugins ?? DEFAULT_CHAIN, {
    catalog: PLUGIN_CATALOG,
    container,
    baseDir: options.baseDir ?? process.cwd(),
    source: options.source ?? 'plugins',
  });
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  // A SOCKS5 handshake follows the chain in force (reloads included): proxy-auth, head-parser's timeout.
  // (Called only once listening, so `server` is set by then.)
  const current = () => server.plugins;
  const server: ProxyServer = new ProxyServer({
    plugins,
    listener:
      options.listener ??
      (options.tls
        ? new TlsListener(host, port, { ...options.tls, handshakeTimeoutMs: headTimeout(plugins) }, services)
        : new TcpListener(host, port, services)),
    listeners: options.socks && [socks5ListenerFor(options.socks, current, services)],
    logger: services.logger,
    stats: services.stats,
    gracePeriodMs: options.gracePeriodMs ?? 10_000,
    maxConnections: options.maxConnections ?? 10_000,
  });
  servicesOf.set(server, container);
  return server;
}

/** The container each proxy built here resolved its chain in: a reload resolves the next one there too. */
const servicesOf = new WeakMap<ProxyServer, DependencyContainer>();

/**
 * A child of `parent` (default: tsyringe's root) with the default services registered where
 * `parent` has none: Logger, ProxyStats, Dialer, MetricsRegistry. The container a chain resolves in.
 */
export function proxyServices(parent: DependencyContainer = rootContainer): DependencyContainer {
  const container = parent.createChildContainer();
  if (!container.isRegistered(Logger, true)) container.registerInstance(Logger, new StreamLogger());
  if (!container.isRegistered(ProxyStats, true)) container.registerInstance(ProxyStats, createStats());
  // The transports report running out of descriptors to the same logger and counters as the core.
  const services = { logger: container.resolve(Logger), stats: container.resolve(ProxyStats) };
  // TCP, and parent proxies (upstream-proxy routes) over the same TCP dialer.
  if (!container.isRegistered(Dialer, true)) container.registerInstance(Dialer, new ParentDialer(new TcpDialer(services)));
  if (!container.isRegistered(MetricsRegistry, true)) {
    // Created (and prom-client loaded) only when something asks for it: the metrics plugin.
    container.register(MetricsRegistry, { useFactory: instanceCachingFactory(() => new (loadPromClient().Registry)()) });
  }
  return container;
}

/** Where a chain's `module` paths start and how its messages name it. */
export interface ChainSource {
  /** Folder that plugin `module` paths (and plugins' relative files) are relative to. */
  baseDir: string;
  /** Names the list in error messages, e.g. the config file's path. */
  source: string;
}

/** Resolves a chain with the built-in catalog in `container` exactly as start-up does (a `proxyServices` container). */
export function resolveProxyChain(specs: readonly PluginSpec[], container: DependencyContainer, where: ChainSource): Promise<ResolvedPlugin[]> {
  return resolveChain(specs, { catalog: PLUGIN_CATALOG, container, ...where });
}

/**
 * Resolves a new chain for a proxy built by {@link createProxy}, with the same services, and
 * puts it in force for new connections (`server.reload`). Rejects, changing nothing, when the
 * chain is invalid (ERR_PROXY_CONFIG) or the server is closing. Plugins' admin routes (`/faults`)
 * move to the new chain only once it resolved.
 */
export async function reloadProxy(server: ProxyServer, specs: readonly PluginSpec[], where: ChainSource): Promise<readonly ProxyPlugin[]> {
  const services = servicesOf.get(server);
  if (!services) throw new Error('reloadProxy: expected a server built by createProxy');
  const container = services.createChildContainer();
  const table = services.isRegistered(AdminRoutes, true) ? services.resolve(AdminRoutes) : undefined;
  const staged = table instanceof AdminRouteTable ? new StagedRoutes(table) : undefined;
  if (staged) container.registerInstance(AdminRoutes, staged);
  const plugins = (await resolveProxyChain(specs, container, where)).map(({ plugin }) => plugin);
  try {
    server.reload(plugins);
  } catch (error) {
    await Promise.allSettled(plugins.map(async (plugin) => plugin.dispose?.()));
    throw error;
  }
  staged?.commit();
  return plugins;
}

/** The chain's head timeout, which bounds a TLS handshake too: a client gets that long to start talking either way. */
function headTimeout(plugins: readonly ProxyPlugin[]): number | undefined {
  const parser = plugins.find((plugin): plugin is HeadParserPlugin => plugin instanceof HeadParserPlugin);
  return parser?.options.headersTimeoutMs;
}

/** Builds a proxy from a plugins.json file (module paths relative to it). */
export async function createProxyFromConfig(file: string, options: Omit<ProxyOptions, 'plugins' | 'baseDir' | 'source'> = {}) {
  const config = await loadConfig(file);
  return createProxy({ ...options, plugins: config.entries, baseDir: config.baseDir, source: config.source });
}
