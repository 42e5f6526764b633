import type { Duplex } from 'node:stream';
import type { InjectionToken } from 'tsyringe';
import type { Target } from '../core/context.js';

/** Opens upstream connections. Rejects with a ProxyError when it cannot (502 family; 503 when the proxy is out of descriptors). */
export interface Dialer {
  /** Resolves with a connected duplex; an abort of `signal` cancels the attempt. */
  dial(target: Target, signal: AbortSignal): Promise<Duplex>;
}

/** Token for the {@link Dialer} service; register another to dial through SOCKS, TLS, … */
export const Dialer: InjectionToken<Dialer> = Symbol('Dialer');
