import { map, type MonoTypeOperatorFunction } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { PluginOptions, requestHeadEvent, type ConnectionContext, type PluginManifest, type ProxyEvent, type ProxyPlugin } from 'proxyline';

/** Options of `tagger`, validated (and defaulted) against the manifest's schema before construction. */
export interface TaggerOptions {
  header: string;
  value: string;
}

/** Adds one header field (by default `X-Tagged-By: proxyline`) to every request sent upstream. */
@injectable()
export class TaggerPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'tagger',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        header: { type: 'string', pattern: "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$", default: 'X-Tagged-By' },
        value: { type: 'string', pattern: '^[\\t\\x20-\\x7e]*$', default: 'proxyline' },
      },
    },
    after: ['head-parser'], // it needs parsed request heads
  };
  readonly name = TaggerPlugin.manifest.name;

  constructor(@inject(PluginOptions) private readonly options: TaggerOptions) {}

  inbound(_ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    const { header, value } = this.options;
    // Synchronous, one event in, one event out: no buffering, so backpressure needs no help.
    return map((event) =>
      event.kind === 'request-head' ? requestHeadEvent({ ...event.head, headers: [...event.head.headers, [header, value]] }, event.exchange) : event,
    );
  }
}
