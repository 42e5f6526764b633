import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { requestHeadEvent, type ProxyEvent } from '../core/events.js';
import { getHeaderValues, type HeaderField, type RequestHead } from '../core/http/head.js';
import { withoutHopByHop } from '../core/http/hop-by-hop.js';
import { parseAbsoluteHttpTarget } from '../core/http/target.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';

/** Options of `http-forward`. */
export interface HttpForwardOptions {
  /** Pseudonym this proxy adds to `Via` (`1.1 <via>`, with the received version); an empty string adds no Via. */
  via: string;
}

/**
 * Routes plain HTTP requests with an absolute-form `http://` target: the upstream gets
 * origin-form, a Host that matches the URL, no hop-by-hop fields and a Via entry; every other
 * field passes unchanged in order and case. One request per client connection: the upstream is
 * asked to close after it, and bytes the client sends after the first request are discarded.
 */
@injectable()
export class HttpForwardPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'http-forward',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        via: { type: 'string', default: 'proxyline', pattern: '^[!#$%&\'*+\\-.^_`|~0-9A-Za-z]*$', description: 'Pseudonym added to Via; "" adds none.' },
      },
    },
    after: ['head-parser'],
    before: ['upstream-dialer'],
  };
  readonly name = HttpForwardPlugin.manifest.name;

  constructor(@inject(PluginOptions) private readonly options: HttpForwardOptions) {}

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new HttpForwardStage(downstream, ctx, this.options));
  }
}

class HttpForwardStage extends Stage {
  private state: 'idle' | 'forwarding' | 'done' = 'idle';

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
    private readonly options: HttpForwardOptions,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (this.state === 'done') return; // one request per connection: the rest is not forwarded
    if (event.kind === 'request-head' && this.state === 'idle' && event.head.method !== 'CONNECT') {
      this.emit(requestHeadEvent(this.rewrite(event.head)));
      this.state = 'forwarding';
      return;
    }
    if (event.kind === 'message-end' && this.state === 'forwarding') this.state = 'done';
    this.emit(event);
  }

  protected override _error(error: unknown): void {
    // After the one request, what the client sends is not parsed for us: its errors must not
    // replace the response the upstream is about to send.
    if (this.state !== 'done') super._error(error);
  }

  private rewrite(head: RequestHead): RequestHead {
    const { ctx } = this;
    const target = parseAbsoluteHttpTarget(head.target);
    ctx.target = { host: target.host, port: target.port };
    ctx.mode = 'http';
    // RFC 9112 §3.2.2: with an absolute-form target the URL's authority replaces Host.
    const headers: HeaderField[] = withoutHopByHop(head.headers).map(([name, value]) =>
      name.toLowerCase() === 'host' ? [name, target.authority] : [name, value],
    );
    if (getHeaderValues(headers, 'host').length === 0) headers.unshift(['Host', target.authority]);
    // Via names the protocol version the request was received with (RFC 9110 §7.6.3).
    if (this.options.via) appendVia(headers, `${head.version} ${this.options.via}`);
    headers.push(['Connection', 'close']);
    return { method: head.method, target: target.path, version: '1.1', headers };
  }
}

/** Adds our entry to the last Via field, or a new Via field, keeping earlier hops in order. */
function appendVia(headers: HeaderField[], entry: string): void {
  for (let i = headers.length - 1; i >= 0; i--) {
    const [name, value] = headers[i] as HeaderField;
    if (name.toLowerCase() === 'via') {
      headers[i] = [name, `${value}, ${entry}`];
      return;
    }
  }
  headers.push(['Via', entry]);
}
