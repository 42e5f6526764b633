import type { Duplex } from 'node:stream';
import type { Target } from '../core/context.js';
import { ProxyError } from '../core/errors.js';
import type { DialVia, Dialer, ParentProxy } from '../core/transport.js';
import { authorityOf, connectThroughParent } from './parent-connect.js';
import { startParentTls } from './tls-parent.js';

/**
 * The default Dialer: straight to the target through `tcp`, or through a parent proxy when asked
 * (`via`). The parent is reached with the same TCP dialer (so running out of descriptors is still
 * a 503), then TLS for an `https` parent, then the parent's CONNECT or a SOCKS5 CONNECT when the
 * connection must reach the target. A parent that cannot be connected (refused, unreachable,
 * failed TLS) is ERR_PROXY_UPSTREAM_CONNECT naming it; one that answers with a refusal is
 * ERR_PROXY_PARENT.
 */
export class ParentDialer implements Dialer {
  constructor(private readonly tcp: Dialer) {}

  dial(target: Target, signal: AbortSignal, via?: DialVia): Promise<Duplex> {
    if (via === undefined) return this.tcp.dial(target, signal);
    return this.throughParent(target, signal, via);
  }

  private async throughParent(target: Target, signal: AbortSignal, via: DialVia): Promise<Duplex> {
    const { parent } = via;
    let socket = await this.tcp.dial({ host: parent.host, port: parent.port }, signal).catch((error: unknown) => {
      throw nameParent(error, parent);
    });
    if (parent.protocol === 'socks5') return (await loadSocks()).connectThroughSocks(socket, target, parent, signal);
    if (parent.protocol === 'https') socket = await startParentTls(socket, parent, signal);
    return via.tunnel ? connectThroughParent(socket, target, parent, signal) : socket;
  }
}

/**
 * The SOCKS5 client side (and the `socks` package) is loaded on the first SOCKS5 parent: a proxy
 * that never uses one does not carry it in its heap (a bigger heap makes every GC of a tunnel dearer).
 */
let socks: Promise<typeof import('./socks-parent.js')> | undefined;
const loadSocks = () => (socks ??= import('./socks-parent.js'));

/** The TCP dialer's error for the parent's address, reworded to say it is the parent proxy. */
function nameParent(error: unknown, parent: ParentProxy): unknown {
  if (!(error instanceof ProxyError) || error.code === 'ERR_PROXY_ABORTED') return error;
  const where = authorityOf(parent);
  const message = error.message.includes(where) ? error.message.replace(where, `parent proxy ${parent.name}`) : `parent proxy ${parent.name}: ${error.message}`;
  return new ProxyError(error.code, message, { cause: error.cause ?? error, headers: error.headers });
}
