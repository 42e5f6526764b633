import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { toProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import { parseAuthority } from '../core/http/target.js';
import type { PluginManifest, ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';

/**
 * Routes `CONNECT host:port`: sets the exchange's target and marks the connection a tunnel. The
 * core then keeps the CONNECT head from the upstream, answers `200 Connection Established` once
 * the upstream is connected, and relays raw bytes both ways — including bytes the client sent
 * right after the head.
 */
@injectable()
export class ConnectHandlerPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'connect-handler',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    after: ['head-parser'],
    before: ['upstream-dialer', 'upstream-proxy'],
  };
  readonly name = ConnectHandlerPlugin.manifest.name;

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new ConnectRouter(downstream, ctx));
  }
}

class ConnectRouter extends Stage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'request-head' && event.head.method === 'CONNECT' && !event.exchange.answeredLocally) {
      try {
        event.exchange.target = parseAuthority(event.head.target);
        this.ctx.mode = 'tunnel';
      } catch (error) {
        // A well-framed request with a target we cannot route: refused in its place (400), and
        // the connection stays open for the next request.
        event.exchange.error = toProxyError(error);
      }
    }
    this.emit(event);
  }
}
