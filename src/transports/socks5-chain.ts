import type { ProxyPlugin } from '../core/plugin.js';
import { Socks5Listener, type CredentialsVerifier } from './socks5-listener.js';
import type { TransportServices } from './transport-services.js';

/** Head deadline of head-parser's defaults: the handshake's when the chain has no head-parser. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

/** Where `createProxy`'s SOCKS5 listener listens (its `socks` option). */
export interface SocksOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on; 0 takes a free one. */
  port: number;
  /** How long a client has for its handshake, in ms (default: head-parser's `headersTimeoutMs`, else 30000; 0: no limit). */
  handshakeTimeoutMs?: number;
}

/** What a SOCKS5 listener takes from a resolved chain, so a SOCKS client meets the same rules as an HTTP one. */
export interface Socks5ChainSettings {
  /** `proxy-auth`'s verifier when the chain has it: then SOCKS5 clients must authenticate too. */
  verifier?: CredentialsVerifier;
  /** `head-parser`'s `headersTimeoutMs`: a handshake gets as long as a request head. */
  handshakeTimeoutMs: number;
}

/** Finds, by plugin name, the first `proxy-auth` (with a `verify` method) and `head-parser` of `plugins`. */
export function socks5ChainSettings(plugins: readonly ProxyPlugin[]): Socks5ChainSettings {
  const auth: (ProxyPlugin & Partial<CredentialsVerifier>) | undefined = plugins.find((plugin) => plugin.name === 'proxy-auth');
  const parser: (ProxyPlugin & { headersTimeoutMs?: unknown }) | undefined = plugins.find((plugin) => plugin.name === 'head-parser');
  const timeout = parser?.headersTimeoutMs;
  return {
    verifier: typeof auth?.verify === 'function' ? (auth as CredentialsVerifier) : undefined,
    handshakeTimeoutMs: typeof timeout === 'number' ? timeout : DEFAULT_HANDSHAKE_TIMEOUT_MS,
  };
}

/**
 * The SOCKS5 listener for `options`, authenticating and timing out as the chain in force does:
 * `chain` is read at each handshake, so after a reload SOCKS5 clients meet the new chain's rules.
 */
export function socks5ListenerFor(options: SocksOptions, chain: () => readonly ProxyPlugin[], services: TransportServices): Socks5Listener {
  const settings = {
    host: options.host ?? '127.0.0.1',
    port: options.port,
    get verifier() {
      return socks5ChainSettings(chain()).verifier;
    },
    get handshakeTimeoutMs() {
      return options.handshakeTimeoutMs ?? socks5ChainSettings(chain()).handshakeTimeoutMs;
    },
  };
  return new Socks5Listener(settings, services);
}
