import type { PluginClass } from '../core/plugin.js';
import { ByteCounterPlugin } from './byte-counter.plugin.js';
import { ConnectHandlerPlugin } from './connect-handler.plugin.js';
import { HeadParserPlugin } from './head-parser.plugin.js';
import { HttpForwardPlugin } from './http-forward.plugin.js';
import { LoggerPlugin } from './logger.plugin.js';
import { MetricsPlugin } from './metrics.plugin.js';
import { UpstreamDialerPlugin } from './upstream-dialer.plugin.js';

/** The built-in plugins, by the name plugins.json uses. */
export const BUILT_IN_PLUGINS: ReadonlyMap<string, PluginClass> = new Map(
  [HeadParserPlugin, ConnectHandlerPlugin, HttpForwardPlugin, UpstreamDialerPlugin, ByteCounterPlugin, LoggerPlugin, MetricsPlugin].map(
    (plugin) => [plugin.manifest.name, plugin as PluginClass],
  ),
);

/** The default chain (the repository's plugins.json lists the same). */
export const DEFAULT_CHAIN = ['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer', 'byte-counter', 'logger'];

export { ByteCounterPlugin, ConnectHandlerPlugin, HeadParserPlugin, HttpForwardPlugin, LoggerPlugin, MetricsPlugin, UpstreamDialerPlugin };
