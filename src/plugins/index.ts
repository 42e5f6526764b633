import type { PluginClass } from '../core/plugin.js';
import type { PluginCatalog } from '../core/registry.js';
import { ByteCounterPlugin } from './byte-counter.plugin.js';
import { ConnectHandlerPlugin } from './connect-handler.plugin.js';
import { HeadParserPlugin } from './head-parser.plugin.js';
import { HttpForwardPlugin } from './http-forward.plugin.js';
import { LoggerPlugin } from './logger.plugin.js';
import { UpstreamDialerPlugin } from './upstream-dialer.plugin.js';

/**
 * The built-in plugins by the name plugins.json uses. The production plugins are loaded only when
 * a chain names them: their libraries (bcrypt, sonic-boom, prom-client, …) would otherwise sit in every
 * process's heap, and a larger heap makes every garbage collection of the data path dearer (the
 * default chain's tunnels measured about twice the CPU per GiB with them loaded).
 */
export const PLUGIN_CATALOG: PluginCatalog = new Map<string, PluginClass | (() => Promise<PluginClass>)>([
  ...[HeadParserPlugin, ConnectHandlerPlugin, HttpForwardPlugin, UpstreamDialerPlugin, ByteCounterPlugin, LoggerPlugin].map((plugin): [string, PluginClass] => [
    plugin.manifest.name,
    plugin as PluginClass,
  ]),
  ['proxy-auth', async () => (await import('./proxy-auth.plugin.js')).ProxyAuthPlugin],
  ['destination-policy', async () => (await import('./destination-policy.plugin.js')).DestinationPolicyPlugin],
  ['rate-limit', async () => (await import('./rate-limit.plugin.js')).RateLimitPlugin],
  ['access-log', async () => (await import('./access-log.plugin.js')).AccessLogPlugin],
  ['metrics', async () => (await import('./metrics.plugin.js')).MetricsPlugin],
  ['capture', async () => (await import('./capture.plugin.js')).CapturePlugin],
  ['faults', async () => (await import('./faults.plugin.js')).FaultsPlugin],
  ['upstream-proxy', async () => (await import('./upstream-proxy.plugin.js')).UpstreamProxyPlugin],
]);

/** The default chain (the repository's plugins.json lists the same). */
export const DEFAULT_CHAIN = ['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer', 'byte-counter', 'logger'];

export { ByteCounterPlugin, ConnectHandlerPlugin, HeadParserPlugin, HttpForwardPlugin, LoggerPlugin, UpstreamDialerPlugin };
