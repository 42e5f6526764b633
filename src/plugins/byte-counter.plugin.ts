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
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
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
  private readonly inbound: boolean;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
    direction: keyof ByteCounts,
  ) {
    super(downstream);
    // A flag rather than a computed key: this runs for every event of every request.
    this.inbound = direction === 'inbound';
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'request-head' || event.kind === 'response-head') this.exchange = event.exchange;
    const bytes = wireLength(event);
    if (bytes > 0) {
      const { ctx, exchange } = this;
      if (this.inbound) {
        ctx.bytes.inbound += bytes;
        if (exchange) exchange.bytes.inbound += bytes;
      } else {
        ctx.bytes.outbound += bytes;
        if (exchange) exchange.bytes.outbound += bytes;
      }
    }
    this.emit(event);
  }
}
