import type { PluginClass } from '../core/plugin.js';
import { AccessLogPlugin } from './access-log.plugin.js';
import { ByteCounterPlugin } from './byte-counter.plugin.js';
import { ConnectHandlerPlugin } from './connect-handler.plugin.js';
import { DestinationPolicyPlugin } from './destination-policy.plugin.js';
import { HeadParserPlugin } from './head-parser.plugin.js';
import { HttpForwardPlugin } from './http-forward.plugin.js';
import { LoggerPlugin } from './logger.plugin.js';
import { MetricsPlugin } from './metrics.plugin.js';
import { ProxyAuthPlugin } from './proxy-auth.plugin.js';
import { RateLimitPlugin } from './rate-limit.plugin.js';
import { UpstreamDialerPlugin } from './upstream-dialer.plugin.js';

/** The built-in plugins, by the name plugins.json uses: the core chain, then the production set. */
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
  ].map((plugin) => [plugin.manifest.name, plugin as PluginClass]),
);

/** The default chain (the repository's plugins.json lists the same). */
export const DEFAULT_CHAIN = ['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer', 'byte-counter', 'logger'];

export {
  AccessLogPlugin,
  ByteCounterPlugin,
  ConnectHandlerPlugin,
  DestinationPolicyPlugin,
  HeadParserPlugin,
  HttpForwardPlugin,
  LoggerPlugin,
  MetricsPlugin,
  ProxyAuthPlugin,
  RateLimitPlugin,
  UpstreamDialerPlugin,
};
