import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { injectable } from 'tsyringe';
import type { ByteCounts, ConnectionContext } from '../core/context.js';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { wireLength } from '../core/pipeline.js';
import type { PluginManifest, ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';

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
    return stage((downstream) => new Counter(downstream, ctx, 'inbound'));
  }

  outbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new Counter(downstream, ctx, 'outbound'));
  }
}

/** Adds each event's wire size to the connection's and its exchange's tally of one direction. */
class Counter extends Stage {
  private exchange?: Exchange;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
    private readonly direction: keyof ByteCounts,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'request-head' || event.kind === 'response-head') this.exchange = event.exchange;
    const bytes = wireLength(event);
    this.ctx.bytes[this.direction] += bytes;
    if (this.exchange) this.exchange.bytes[this.direction] += bytes;
    this.emit(event);
  }
}
