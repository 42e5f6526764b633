import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { toProxyError } from '../core/errors.js';
import { requestHeadEvent, responseHeadEvent, type ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { isField, type HeaderField, type RequestHead } from '../core/http/head.js';
import { withoutHopByHop } from '../core/http/hop-by-hop.js';
import type { ResponseHead } from '../core/http/response-framing.js';
import { parseAbsoluteHttpTarget } from '../core/http/target.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';

/** Options of `http-forward`. */
export interface HttpForwardOptions {
  /** Pseudonym this proxy adds to `Via` (`1.1 <via>`, with the received version); "" adds none. */
  via: string;
}

/**
 * Routes every plain HTTP request by its own absolute-form `http://` URL: the upstream gets
 * origin-form, a Host that matches the URL, no hop-by-hop fields and a Via entry; every other
 * field passes unchanged in order and case. Responses lose their hop-by-hop fields and gain Via
 * too. An upgrade request keeps `Upgrade` and `Connection: upgrade`, and so does its 101.
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
    return stage((downstream) => new RequestRewriter(downstream, ctx, this));
  }

  outbound(_ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new ResponseRewriter(downstream, this));
  }

  /** @internal */
  rewriteRequest(head: RequestHead, exchange: Exchange): RequestHead {
    const target = parseAbsoluteHttpTarget(head.target);
    exchange.target = { host: target.host, port: target.port };
    // RFC 9112 §3.2.2: with an absolute-form target the URL's authority replaces Host.
    const headers = withoutHopByHop(head.headers);
    let hasHost = false;
    for (let i = 0; i < headers.length; i++) {
      const [name, value] = headers[i]!;
      if (!isField(name, 'host')) continue;
      hasHost = true;
      if (value !== target.authority) headers[i] = [name, target.authority];
    }
    if (!hasHost) headers.unshift(['Host', target.authority]);
    if (exchange.upgradeRequested) keepUpgrade(headers, head.headers);
    // Via names the protocol version the message was received with (RFC 9110 §7.6.3).
    if (this.options.via) appendVia(headers, `${head.version} ${this.options.via}`);
    return { method: head.method, target: target.path, version: '1.1', headers };
  }

  /** @internal */
  rewriteResponse(head: ResponseHead): ResponseHead {
    const headers = withoutHopByHop(head.headers);
    if (head.status === 101) keepUpgrade(headers, head.headers);
    if (this.options.via && head.status >= 200) appendVia(headers, `${head.version} ${this.options.via}`);
    return { ...head, headers };
  }
}

/** Routes and rewrites each plain HTTP request head. */
class RequestRewriter extends Stage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
    private readonly plugin: HttpForwardPlugin,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind !== 'request-head' || event.head.method === 'CONNECT' || event.exchange.answeredLocally) return this.emit(event);
    this.ctx.mode = 'http';
    let head;
    try {
      head = this.plugin.rewriteRequest(event.head, event.exchange);
    } catch (error) {
      // A well-framed request we cannot route (not an absolute http:// URL): refused in its
      // place (400), and the connection stays open for the next request.
      event.exchange.error = toProxyError(error);
      return this.emit(event);
    }
    this.emit(requestHeadEvent(head, event.exchange));
  }
}

/** Rewrites each relayed response head (not a CONNECT's 200, nor the proxy's own errors). */
class ResponseRewriter extends Stage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly plugin: HttpForwardPlugin,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind !== 'response-head' || event.exchange.isConnect || event.exchange.answeredLocally) return this.emit(event);
    this.emit(responseHeadEvent(this.plugin.rewriteResponse(event.head), event.exchange));
  }
}

/** Puts back the Upgrade field and a `Connection: upgrade` for a protocol switch. */
function keepUpgrade(headers: HeaderField[], original: readonly HeaderField[]): void {
  for (const field of original) if (isField(field[0], 'upgrade')) headers.push(field);
  headers.push(['Connection', 'Upgrade']);
}

/** Adds our entry to the last Via field, or a new Via field, keeping earlier hops in order. */
function appendVia(headers: HeaderField[], entry: string): void {
  for (let i = headers.length - 1; i >= 0; i--) {
    const [name, value] = headers[i] as HeaderField;
    if (isField(name, 'via')) {
      headers[i] = [name, `${value}, ${entry}`];
      return;
    }
  }
  headers.push(['Via', entry]);
}
