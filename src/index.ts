/**
 * proxyline's public API: build a proxy in code ({@link createProxy}, {@link createProxyFromConfig}),
 * write plugins ({@link ProxyPlugin}, {@link Stage}, {@link GateStage}) and swap the services they
 * use ({@link Logger}, {@link Dialer}). Importing it starts nothing; it only installs the
 * `reflect-metadata` polyfill that tsyringe needs, so a user's script needs no import of its own
 * as long as it imports proxyline before tsyringe. Guide: docs/using-as-a-library.md.
 *
 * @packageDocumentation
 */
// First: tsyringe throws at import time when the Reflect metadata polyfill is missing, and
// ES modules evaluate in import order.
import 'reflect-metadata';
export { createProxy, createProxyFromConfig, reloadProxy, type ChainSource, type ProxyOptions } from './proxy.js';
export { ProxyServer, type ServerOptions } from './core/server.js';
export { ConnectionContext, MAX_IN_FLIGHT, stateKey, type StateKey, type Target, type ConnectionMode, type ByteCounts } from './core/context.js';
export { ERROR_TABLE, ProxyError, toProxyError, badRequest, aborted, type ProxyErrorCode, type ErrorTableEntry } from './core/errors.js';
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
export { Exchange, type ExchangeTimings, type FaultDecision, type LocalReply, type UpstreamTimeouts } from './core/exchange.js';
export { localReply, type LocalReplyInit } from './core/local-reply.js';
export type { ResponseHead } from './core/http/response-framing.js';
export { FlowControl, type FlowSource } from './core/flow-control.js';
export { Logger, StreamLogger, SilentLogger, type LogFields } from './core/logger.js';
export { PluginOptions, PluginBaseDir, type ProxyPlugin, type PluginClass, type PluginManifest, type JsonSchema } from './core/plugin.js';
export { resolvePlugins, type PluginEntry, type PluginSpec, type PluginWithOptions, type RegistryOptions } from './core/registry.js';
export { loadConfig, parseConfig, type LoadedConfig } from './core/config.js';
export { ProxyStats } from './core/stats.js';
export { pluginsJsonSchema } from './core/schema.js';
export { Stage, GateStage, stage, type StageFactory, type StageOperator } from './core/stage.js';
export { getHeader, getHeaderValues, getHeaderTokens, getSoleHeader, serializeRequestHead, type HeaderField, type RequestHead } from './core/http/head.js';
export { DEFAULT_CHAIN, PLUGIN_CATALOG } from './plugins/index.js';
export * from './plugins/all.js';
export { MetricsRegistry } from './plugins/metrics-registry.js';
export type { AccessLogOptions } from './plugins/access-log.plugin.js';
export type { CaptureOptions } from './plugins/capture.plugin.js';
export { DnsResolver, type DestinationPolicyOptions, type DestinationRule } from './plugins/destination-policy.plugin.js';
export type {
  AbortFault,
  BandwidthFault,
  CutResponseFault,
  DelayFault,
  DropFault,
  FaultConfig,
  FaultDirection,
  FaultMatch,
  FaultsOptions,
  LatencyFault,
  LimitDataFault,
  ResetFault,
  SlicerFault,
  SlowCloseFault,
  StreamFaultConfig,
  TimeoutFault,
} from './plugins/faults/config.js';
export type { HeadParserOptions } from './plugins/head-parser.plugin.js';
export type { HttpForwardOptions, ForwardedMode } from './plugins/http-forward.plugin.js';
export type { LoggerPluginOptions } from './plugins/logger.plugin.js';
export type { ProxyAuthOptions } from './plugins/proxy-auth.plugin.js';
export type { RateLimitOptions } from './plugins/rate-limit.plugin.js';
export type { RedisStoreOptions, RedisStoreOnError } from './plugins/rate-limit-redis.js';
export type { UpstreamDialerOptions } from './plugins/upstream-dialer.plugin.js';
export type { UpstreamProxyOptions, UpstreamProxyRule, ProxyChoice, ParentProxyEntry } from './plugins/upstream-proxy.plugin.js';
export type { PluginCatalog } from './core/registry.js';
export { AdminServer, createAdminServer, type AdminServerOptions } from './admin.js';
export { AdminRoutes, AdminRouteTable, type AdminHandler, type AdminRequest, type AdminResponse } from './core/admin-routes.js';
export { TcpDialer } from './transports/tcp-dialer.js';
export { ParentDialer } from './transports/parent-dialer.js';
export { TcpListener } from './transports/tcp-listener.js';
export { TlsListener, type TlsListenerOptions } from './transports/tls-listener.js';
export { checkTlsCredentials, type TlsCredentials, type TlsCredentialNames } from './transports/tls-credentials.js';
export { Socks5Listener, type Socks5ListenerOptions, type CredentialsVerifier } from './transports/socks5-listener.js';
export { Socks5Dialect } from './transports/socks5-replies.js';
export type { SocksOptions } from './transports/socks5-chain.js';
export type { ClientDialect, DialectExchange } from './core/dialect.js';
export { Dialer, type BoundAddress, type Listener, type PeerAddress, type ParentProxy, type UpstreamHop, type DialVia } from './core/transport.js';
export type { TransportServices } from './transports/transport-services.js';
