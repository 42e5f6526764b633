import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import { injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { requestHeadLength } from '../core/http/head.js';
import { responseHeadLength } from '../core/http/response-head.js';
import type { PluginManifest, ProxyPlugin } from '../core/plugin.js';

/**
 * Counts the bytes passing its place in the chain, per exchange (`exchange.bytes`) and per
 * connection (`ctx.bytes`): inbound towards the upstream, outbound towards the client. Put it
 * after the routing plugins to count what the upstream really receives.
 */
@injectable()
export class ByteCounterPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'byte-counter',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  };
  readonly name = ByteCounterPlugin.manifest.name;

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    let exchange: Exchange | undefined;
    return tap((event) => {
      let bytes = 0;
      if (event.kind === 'request-head') {
        exchange = event.exchange;
        bytes = requestHeadLength(event.head);
      } else if (event.kind === 'data') {
        bytes = event.chunk.length;
      }
      ctx.bytes.inbound += bytes;
      if (exchange) exchange.bytes.inbound += bytes;
    });
  }

  outbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    let exchange: Exchange | undefined;
    return tap((event) => {
      let bytes = 0;
      if (event.kind === 'response-head') {
        exchange = event.exchange;
        bytes = responseHeadLength(event.head);
      } else if (event.kind === 'data') {
        bytes = event.chunk.length;
      }
      ctx.bytes.outbound += bytes;
      if (exchange) exchange.bytes.outbound += bytes;
    });
  }
}
