import type { MonoTypeOperatorFunction } from 'rxjs';
import type { InjectionToken } from 'tsyringe';
import type { ConnectionContext } from './context.js';
import type { ProxyError } from './errors.js';
import type { ProxyEvent } from './events.js';
import type { Exchange } from './exchange.js';

/** A JSON Schema object (draft-07, as ajv's default class validates it). */
export type JsonSchema = Record<string, unknown>;

/**
 * A pipeline stage. `inbound` sees client → upstream events in plugins.json order, `outbound`
 * sees upstream → client events in reverse order. Both are called once per connection and return
 * plain RxJS operators; keep them synchronous per event, and hold a flow-control reason to wait.
 */
export interface ProxyPlugin {
  /** The name the plugin goes by in plugins.json and in logs. */
  readonly name: string;
  /** Operator for the client → upstream direction. */
  inbound?(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent>;
  /** Operator for the upstream → client direction; built once the upstream is attached. */
  outbound?(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent>;
  /**
   * Called once per request when it is over, for access logs and metrics (Pingora's logging
   * phase): when its response has been relayed to its end, after every outbound stage saw it (so
   * its byte counts are final); for a tunnel (CONNECT, 101), a response cut off, or a request that
   * got no response (the client left, a fault reset it: `ERR_PROXY_ABORTED`), when the connection
   * closes, with `error` if it failed. Also called at close with no exchange when the connection
   * failed outside any request. Runs before `onClose`.
   */
  onExchangeEnd?(ctx: ConnectionContext, exchange: Exchange | undefined, error?: ProxyError): void;
  /** Called once when the connection has closed; `error` is why, if it failed. */
  onClose?(ctx: ConnectionContext, error?: ProxyError): void;
  /**
   * Called once when the server closes: free what the plugin holds across connections. A promise
   * (say, a log being written out) delays close() until it settles: keep it bounded.
   */
  dispose?(): void | Promise<void>;
}

/** What a plugin class declares about itself, read by the registry at start-up. */
export interface PluginManifest {
  /** Name used in plugins.json. */
  readonly name: string;
  /** JSON Schema of the plugin's options; defaults in it are applied. */
  readonly optionsSchema?: JsonSchema;
  /** Plugins that must appear earlier in the chain when this one is used. */
  readonly after?: readonly string[];
  /** Plugins that must appear later in the chain when both are used. */
  readonly before?: readonly string[];
}

/** A plugin class: constructed by tsyringe, with its manifest as a static field. */
export interface PluginClass<P extends ProxyPlugin = ProxyPlugin> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a constructor type that any plugin class fits, whatever its constructor parameters, needs any[]
  new (...args: any[]): P;
  /** Read by the registry before constructing: name, options schema and order constraints. */
  readonly manifest: PluginManifest;
}

/** Token under which each plugin's validated options are registered in its own child container. */
export const PluginOptions: InjectionToken<unknown> = Symbol('PluginOptions');

/** Token for the folder a plugin's relative paths (an htpasswd file, a log file) start from: the config file's. */
export const PluginBaseDir: InjectionToken<string> = Symbol('PluginBaseDir');
