import type { PluginClass } from '../core/plugin.js';
import { AccessLogPlugin } from './access-log.plugin.js';
import { CapturePlugin } from './capture.plugin.js';
import { DestinationPolicyPlugin } from './destination-policy.plugin.js';
import { FaultsPlugin } from './faults.plugin.js';
import { ByteCounterPlugin, ConnectHandlerPlugin, HeadParserPlugin, HttpForwardPlugin, LoggerPlugin, UpstreamDialerPlugin } from './index.js';
import { MetricsPlugin } from './metrics.plugin.js';
import { ProxyAuthPlugin } from './proxy-auth.plugin.js';
import { RateLimitPlugin } from './rate-limit.plugin.js';
import { UpstreamProxyPlugin } from './upstream-proxy.plugin.js';

/** Every built-in plugin class, loaded (for the public API, the plugins.json schema and tests). */
export const BUILT_IN_PLUGINS: ReadonlyMap<string, PluginClass> = new Map(
  [
    HeadParserPlugin,
    ConnectHandlerPlugin,
    HttpForwardPlugin,
    UpstreamDialerPlugin,
    ByteCounterPlugin,
    LoggerPlugin,
    ProxyAuthPlugin,
    DestinationPolicyPlugin,
    RateLimitPlugin,
    AccessLogPlugin,
    MetricsPlugin,
    CapturePlugin,
    FaultsPlugin,
    UpstreamProxyPlugin,
  ].map((plugin) => [plugin.manifest.name, plugin as PluginClass]),
);

export {
  AccessLogPlugin,
  ByteCounterPlugin,
  CapturePlugin,
  ConnectHandlerPlugin,
  DestinationPolicyPlugin,
  FaultsPlugin,
  HeadParserPlugin,
  HttpForwardPlugin,
  LoggerPlugin,
  MetricsPlugin,
  ProxyAuthPlugin,
  RateLimitPlugin,
  UpstreamDialerPlugin,
  UpstreamProxyPlugin,
};
