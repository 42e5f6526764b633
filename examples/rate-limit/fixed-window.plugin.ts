import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { PluginOptions, ProxyError, Stage, stage, type ConnectionContext, type PluginManifest, type ProxyEvent, type ProxyPlugin } from 'proxyline';

/** Options of `fixed-window`, validated (and defaulted) against the manifest's schema. */
export interface FixedWindowOptions {
  requestsPerWindow: number;
  windowSeconds: number;
}

/** At most `requestsPerWindow` requests per client IP in each fixed window of `windowSeconds`. */
@injectable()
export class FixedWindowPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'fixed-window',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        requestsPerWindow: { type: 'integer', minimum: 1, default: 5, description: 'Requests allowed per client in one window.' },
        windowSeconds: { type: 'integer', minimum: 1, default: 1, description: 'Length of a window, in seconds.' },
      },
    },
    after: ['head-parser'], // it needs parsed request heads
    before: ['upstream-dialer'], // a refused request must not be sent
  };
  readonly name = FixedWindowPlugin.manifest.name;
  /** Requests per client address in the current window; shared by all connections. */
  readonly counts = new Map<string, number>();
  private window = 0;

  constructor(@inject(PluginOptions) readonly options: FixedWindowOptions) {}

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new WindowCounter(downstream, ctx, this));
  }

  /** Counts one request of `client`; returns 0 if allowed, else the seconds until the next window. */
  count(client: string): number {
    const windowMs = this.options.windowSeconds * 1000;
    const window = Math.floor(Date.now() / windowMs);
    if (window !== this.window) {
      this.window = window;
      this.counts.clear(); // a new window: forget the old counts (memory stays bounded)
    }
    const count = (this.counts.get(client) ?? 0) + 1;
    this.counts.set(client, count);
    return count <= this.options.requestsPerWindow ? 0 : Math.ceil(((window + 1) * windowMs - Date.now()) / 1000);
  }
}

/** One per connection: refuses each request over its client's budget. */
class WindowCounter extends Stage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
    private readonly plugin: FixedWindowPlugin,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'request-head' && !event.exchange.answeredLocally) {
      const retryAfter = this.plugin.count(this.ctx.clientAddress.address);
      if (retryAfter > 0) {
        event.exchange.error = new ProxyError('ERR_PROXY_RATE_LIMITED', 'too many requests, slow down', {
          headers: [['Retry-After', String(retryAfter)]],
        });
        event.exchange.answeredBy = this.plugin.name;
      }
    }
    this.emit(event); // always pass the event on: the core answers a refused request in its place
  }
}
