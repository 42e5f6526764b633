import { isIP } from 'node:net';
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
import { isServerWideOptions, lastHopReply, maxForwardsOf, setMaxForwards } from './max-forwards.js';

/** Options of `http-forward`. */
export interface HttpForwardOptions {
  /** Pseudonym this proxy adds to `Via` (`1.1 <via>`, with the received version); "" adds none. */
  via: string;
  /**
   * How the client's address is passed on in plain HTTP requests: appended to X-Forwarded-For
   * (as Squid does), to Forwarded as `for=` (RFC 7239), to both, or not at all.
   */
  forwarded: ForwardedMode;
}

/** Which field(s) carry the client's address upstream. */
export type ForwardedMode = 'x-forwarded-for' | 'forwarded' | 'both' | 'none';

/**
 * Routes every plain HTTP request by its own absolute-form `http://` URL: the upstream gets
 * origin-form, a Host that matches the URL, no hop-by-hop fields, a Via entry and the client's
 * address (X-Forwarded-For and/or Forwarded); every other field passes unchanged in order and
 * case. Responses lose their hop-by-hop fields and gain Via too. An upgrade request keeps
 * `Upgrade` and `Connection: upgrade`, and so does its 101. OPTIONS and TRACE honour Max-Forwards
 * (RFC 9110 §7.6.2): decremented on the way, answered here when it is 0.
 */
@injectable()
export class HttpForwardPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'http-forward',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        via: { type: 'string', default: 'proxyline', pattern: "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]*$", description: 'Pseudonym added to Via; "" adds none.' },
        forwarded: {
          enum: ['x-forwarded-for', 'forwarded', 'both', 'none'],
          default: 'x-forwarded-for',
          description:
            'Passes the client address upstream on plain HTTP requests: appended to X-Forwarded-For, to Forwarded as for= (RFC 7239), to both, or none.',
        },
      },
    },
    after: ['head-parser'],
    before: ['upstream-dialer', 'upstream-proxy'],
  };
  readonly name = HttpForwardPlugin.manifest.name;

  /** Which client address fields requests get, decided once from `forwarded`. */
  private readonly addXForwardedFor: boolean;
  private readonly addForwarded: boolean;

  constructor(@inject(PluginOptions) private readonly options: HttpForwardOptions) {
    const mode = options.forwarded ?? 'x-forwarded-for';
    this.addXForwardedFor = mode === 'x-forwarded-for' || mode === 'both';
    this.addForwarded = mode === 'forwarded' || mode === 'both';
  }

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new RequestRewriter(downstream, ctx, this));
  }

  outbound(_ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new ResponseRewriter(downstream, this));
  }

  /** @internal */
  rewriteRequest(head: RequestHead, exchange: Exchange, client: ClientEntries): RequestHead {
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
    if (this.options.via) appendEntry(headers, 'via', 'Via', `${head.version} ${this.options.via}`);
    if (this.addXForwardedFor) appendEntry(headers, 'x-forwarded-for', 'X-Forwarded-For', client.xForwardedFor);
    if (this.addForwarded) appendEntry(headers, 'forwarded', 'Forwarded', client.forwarded);
    const hops = maxForwardsOf(head);
    if (hops === 0) {
      // This proxy is the request's last hop: it answers itself, and dials nothing.
      exchange.reply = lastHopReply(head);
      exchange.answeredBy = this.name;
    } else if (hops !== undefined) {
      setMaxForwards(headers, hops - 1);
    }
    // RFC 9112 §3.2.4: OPTIONS for a whole server (empty path, no query) goes on as `OPTIONS *`.
    const path = isServerWideOptions(head) ? '*' : target.path;
    return { method: head.method, target: path, version: '1.1', headers };
  }

  /** @internal */
  rewriteResponse(head: ResponseHead): ResponseHead {
    const headers = withoutHopByHop(head.headers);
    if (head.status === 101) keepUpgrade(headers, head.headers);
    if (this.options.via && head.status >= 200) appendEntry(headers, 'via', 'Via', `${head.version} ${this.options.via}`);
    return { ...head, headers };
  }
}

/** Routes and rewrites each plain HTTP request head. */
class RequestRewriter extends Stage {
  /** The client's address as field entries, built at the first plain HTTP request (a tunnel never needs them). */
  private client?: ClientEntries;

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
    this.client ??= clientEntries(this.ctx.clientAddress.address);
    let head;
    try {
      head = this.plugin.rewriteRequest(event.head, event.exchange, this.client);
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

/**
 * Adds our entry to the last `lower` field (a list field: earlier hops stay first, in order), or
 * a new `name` field at the end. An empty last field gets the entry alone, not a leading comma.
 */
function appendEntry(headers: HeaderField[], lower: string, name: string, entry: string): void {
  for (let i = headers.length - 1; i >= 0; i--) {
    const [field, value] = headers[i] as HeaderField;
    if (isField(field, lower)) {
      headers[i] = [field, value === '' ? entry : `${value}, ${entry}`];
      return;
    }
  }
  headers.push([name, entry]);
}

/** One connection's client address as an X-Forwarded-For entry and a Forwarded element. */
export interface ClientEntries {
  /** `192.0.2.1`, `2001:db8::1`, or `unknown`. */
  readonly xForwardedFor: string;
  /** `for=192.0.2.1`, `for="[2001:db8::1]"`, or `for=unknown` (RFC 7239 §4, §6). */
  readonly forwarded: string;
}

/**
 * The entries for a client address as the listener gave it. An IPv4-mapped IPv6 address is the
 * IPv4 client of a dual-stack socket, so it is written as IPv4; an IPv6 zone (`%eth0`) means
 * nothing past this host and is dropped (RFC 7239's node syntax has no zone). IPv6 goes in
 * brackets and quotes in Forwarded, since `:`, `[` and `]` are not token characters. Anything
 * that is not an IP address (a custom listener's) is `unknown` (§6.2): it never reaches a field.
 * @internal
 */
export function clientEntries(address: string): ClientEntries {
  const zone = address.indexOf('%');
  let ip = zone >= 0 ? address.slice(0, zone) : address;
  if (ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
  switch (isIP(ip)) {
    case 4:
      return { xForwardedFor: ip, forwarded: `for=${ip}` };
    case 6:
      return { xForwardedFor: ip, forwarded: `for="[${ip}]"` };
    default:
      return UNKNOWN_CLIENT;
  }
}

const UNKNOWN_CLIENT: ClientEntries = { xForwardedFor: 'unknown', forwarded: 'for=unknown' };
