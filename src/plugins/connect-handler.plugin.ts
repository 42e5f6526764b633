import { filter, Observable, type MonoTypeOperatorFunction } from 'rxjs';
import { injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { dataEvent, type ProxyEvent } from '../core/events.js';
import { parseAuthority } from '../core/http/target.js';
import type { PluginManifest, ProxyPlugin } from '../core/plugin.js';

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n');

/**
 * Turns `CONNECT host:port` into a tunnel: routes the connection to the target, keeps the CONNECT
 * head from the upstream, and answers 200 once the upstream is connected. Bytes after the head
 * (sent before the 200 arrived) are tunnel bytes and flow on unchanged.
 */
@injectable()
export class ConnectHandlerPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'connect-handler',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    after: ['head-parser'],
    before: ['upstream-dialer'],
  };
  readonly name = ConnectHandlerPlugin.manifest.name;

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return filter((event) => {
      if (event.kind !== 'request-head' || event.head.method !== 'CONNECT') return true;
      ctx.target = parseAuthority(event.head.target);
      ctx.mode = 'tunnel';
      return false;
    });
  }

  outbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    // Built when the upstream is attached, so the mode is known by now. A hand-made prepend,
    // not concat(of(…), source): idle tunnels would each keep concat's inner subscribers alive.
    return (source) =>
      ctx.mode !== 'tunnel'
        ? source
        : new Observable<ProxyEvent>((subscriber) => {
            subscriber.next(dataEvent(ESTABLISHED));
            return source.subscribe(subscriber);
          });
  }
}
