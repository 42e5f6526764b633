// The public API. No side effects: importing it starts nothing.
export { createProxy, createProxyFromConfig, type ProxyOptions } from './proxy.js';
export { ProxyServer, type ServerOptions } from './core/server.js';
export { ConnectionContext, stateKey, type StateKey, type Target, type ConnectionMode, type ByteCounts } from './core/context.js';
export { ERROR_TABLE, ProxyError, toProxyError, badRequest, aborted, type ProxyErrorCode } from './core/errors.js';
export {
  dataEvent,
  requestHeadEvent,
  responseHeadEvent,
  messageEndEvent,
  type ProxyEvent,
  type DataEvent,
  type RequestHeadEvent,
  type ResponseHeadEvent,
  type MessageEndEvent,
} from './core/events.js';
export { Exchange } from './core/exchange.js';
export type { ResponseHead } from './core/http/response-framing.js';
export { FlowControl } from './core/flow-control.js';
export { Logger, StreamLogger, SilentLogger, type LogFields } from './core/logger.js';
export { PluginOptions, PluginBaseDir, type ProxyPlugin, type PluginClass, type PluginManifest, type JsonSchema } from './core/plugin.js';
export { resolvePlugins, type PluginEntry, type PluginSpec } from './core/registry.js';
export { loadConfig, parseConfig } from './core/config.js';
export { pluginsJsonSchema } from './core/schema.js';
export { Stage, GateStage, stage } from './core/stage.js';
export { getHeader, getHeaderValues, getHeaderTokens, getSoleHeader, serializeRequestHead, type HeaderField, type RequestHead } from './core/http/head.js';
export { DEFAULT_CHAIN, PLUGIN_CATALOG } from './plugins/index.js';
export * from './plugins/all.js';
export { MetricsRegistry } from './plugins/metrics-registry.js';
export type { PluginCatalog } from './core/registry.js';
export { AdminServer, createAdminServer, type AdminServerOptions } from './admin.js';
export { TcpDialer } from './transports/tcp-dialer.js';
export { TcpListener } from './transports/tcp-listener.js';
export { Dialer, type Listener, type PeerAddress } from './core/transport.js';
export type { TransportServices } from './transports/transport-services.js';
