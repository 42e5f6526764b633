import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import { injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import type { ProxyEvent } from '../core/events.js';
import { requestHeadLength } from '../core/http/head.js';
import type { PluginManifest, ProxyPlugin } from '../core/plugin.js';

/** Bytes an event will put on the wire. */
function eventBytes(event: ProxyEvent): number {
  switch (event.kind) {
    case 'data':
      return event.chunk.length;
    case 'request-head':
      return requestHeadLength(event.head);
    case 'message-end':
      return 0;
  }
}

/**
 * Counts the bytes passing its place in the chain into `ctx.bytes` (inbound: towards the
 * upstream, outbound: towards the client). Put it after the routing plugins to count what the
 * upstream really receives.
 */
@injectable()
export class ByteCounterPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'byte-counter',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  };
  readonly name = ByteCounterPlugin.manifest.name;

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return tap((event) => (ctx.bytes.inbound += eventBytes(event)));
  }

  outbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return tap((event) => (ctx.bytes.outbound += eventBytes(event)));
  }
}
