import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import picomatch from 'picomatch';
import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext, Target } from '../core/context.js';
import { ProxyError } from '../core/errors.js';
import { dataEvent, messageEndEvent, responseHeadEvent, type ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { parseAbsoluteHttpTarget, parseAuthority } from '../core/http/target.js';
import { PluginBaseDir, PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { errorResponseParts } from '../core/respond.js';
import { Stage, stage } from '../core/stage.js';
import type { UpstreamHop } from '../core/transport.js';
import { parseHop } from './parent-proxy-url.js';

/** One parent given with its own CA file (for an `https` parent with a private CA). */
export interface ParentProxyEntry {
  /** `http://[user:pass@]host:port`, `https://…` or `socks5://…`. */
  url: string;
  /** PEM file the https parent's certificate must chain to; relative to the config file's folder. */
  ca?: string;
}

/** `direct`, one parent URL, or a failover list of them (`direct` may be in it). */
export type ProxyChoice = string | (string | ParentProxyEntry)[];

/** One rule of `upstream-proxy`: a request whose host (and port, if listed) matches goes by `proxy`. */
export interface UpstreamProxyRule {
  /** picomatch globs against the requested host name, case-insensitive (`*.corp.example`, `*`). */
  hosts: string[];
  /** Target ports; any port when absent. */
  ports?: number[];
  /** How matching requests reach their upstream. */
  proxy: ProxyChoice;
}

/** Options of `upstream-proxy`. */
export interface UpstreamProxyOptions {
  /** Evaluated in order; the first rule that matches decides. */
  rules: UpstreamProxyRule[];
  /** How requests no rule matches reach their upstream. */
  default: ProxyChoice;
  /** PEM file every https parent without its own `ca` must chain to (instead of the system's CAs). */
  caFile?: string;
}

/** The route of `direct`: one shared frozen array, so a direct request allocates nothing. */
const DIRECT: readonly UpstreamHop[] = Object.freeze(['direct']);

const CHOICE_ITEM = {
  anyOf: [
    { type: 'string', minLength: 1, description: '"direct" or a parent URL: http://[user:pass@]host:port, https://…, socks5://…' },
    {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      description: 'A parent with its own CA file.',
      properties: {
        url: { type: 'string', minLength: 1, description: 'Parent URL: http://[user:pass@]host:port, https://… or socks5://…' },
        ca: { type: 'string', minLength: 1, description: "PEM file the https parent's certificate must chain to (relative to this file's folder)." },
      },
    },
  ],
};

const CHOICE = (description: string) => ({
  description,
  anyOf: [
    { type: 'string', minLength: 1, description: '"direct" or one parent URL.' },
    { type: 'array', minItems: 1, items: CHOICE_ITEM, description: 'A failover order: the next is tried when one cannot be connected.' },
  ],
});

interface CompiledRule {
  readonly hosts: (host: string) => boolean;
  readonly ports?: ReadonlySet<number>;
  readonly route: readonly UpstreamHop[];
}

/**
 * Chooses, per request (each request of a kept-alive connection, each CONNECT), how its upstream
 * is reached: `direct`, or through parent proxies (HTTP, HTTPS, SOCKS5) in failover order. It
 * writes the route on the exchange (`exchange.route`); `upstream-dialer` dials it. Goes after the
 * routing plugins and `destination-policy` (which judges the real destination) and before
 * `upstream-dialer`. A 407 a parent answers to a plain HTTP request is the parent refusing this
 * proxy, not the client: it becomes a 502 naming the parent.
 */
@injectable()
export class UpstreamProxyPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'upstream-proxy',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        rules: {
          type: 'array',
          default: [],
          description:
            'Evaluated in order, first match wins: { hosts: [glob], ports?: [port], proxy: "direct" | url | [url | { url, ca }] }. Place after http-forward, connect-handler and destination-policy, before upstream-dialer.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['hosts', 'proxy'],
            properties: {
              hosts: {
                type: 'array',
                minItems: 1,
                items: { type: 'string' },
                description: 'Globs on the requested host name, case-insensitive (*.corp.example, *).',
              },
              ports: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1, maximum: 65535 }, description: 'Target ports (any when absent).' },
              proxy: CHOICE('How matching requests reach their upstream.'),
            },
          },
        },
        default: { ...CHOICE('How requests no rule matches reach their upstream.'), default: 'direct' },
        caFile: {
          type: 'string',
          minLength: 1,
          description: "PEM file every https parent without its own ca must chain to (instead of the system's CAs); relative to this file's folder.",
        },
      },
    },
    after: ['head-parser'],
    before: ['upstream-dialer'],
  };
  readonly name = UpstreamProxyPlugin.manifest.name;
  private readonly rules: readonly CompiledRule[];
  private readonly fallback: readonly UpstreamHop[];

  constructor(@inject(PluginOptions) options: UpstreamProxyOptions, @inject(PluginBaseDir) baseDir: string) {
    const caFile = options.caFile === undefined ? undefined : readPem(path.resolve(baseDir, options.caFile), 'caFile');
    const compile = (choice: ProxyChoice, where: string) => compileChoice(choice, where, baseDir, caFile);
    this.rules = options.rules.map((rule, index) => ({
      hosts: compileHosts(rule.hosts, `rules[${index}]`),
      ports: rule.ports && new Set(rule.ports),
      route: compile(rule.proxy, `rules[${index}].proxy`),
    }));
    this.fallback = compile(options.default, 'default');
  }

  inbound(_ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new RouteChooser(downstream, this));
  }

  outbound(_ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new ParentRefusal(downstream));
  }

  /** The route of a target: the first matching rule's, else the default. `name` is the host the client asked for. @internal */
  routeFor(name: string, target: Target): readonly UpstreamHop[] {
    for (const rule of this.rules) {
      if (rule.ports && !rule.ports.has(target.port)) continue;
      if (rule.hosts(name)) return rule.route;
    }
    return this.fallback;
  }
}

/** Writes each routed request's route on its exchange. */
class RouteChooser extends Stage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly plugin: UpstreamProxyPlugin,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'request-head') {
      const { exchange } = event;
      const { target } = exchange;
      if (target && !exchange.answeredLocally) exchange.route = this.plugin.routeFor(requestedHost(exchange, target), target);
    }
    this.emit(event);
  }
}

/**
 * The host name the client asked for. destination-policy may have pinned the target to an
 * address; rules are about names, so the name is read back from the request then.
 */
function requestedHost(exchange: Exchange, target: Target): string {
  if (isIP(target.host) === 0) return normalizeHost(target.host);
  try {
    const asked = exchange.isConnect ? parseAuthority(exchange.request.target) : parseAbsoluteHttpTarget(exchange.request.target);
    return normalizeHost(asked.host);
  } catch {
    return target.host;
  }
}

/**
 * Turns a parent's 407 to a plain HTTP request into a 502 naming the parent: its challenge is for
 * this proxy's credentials, which the client cannot answer. Its body is dropped (its framing
 * still ends the response upstream).
 */
class ParentRefusal extends Stage {
  /** The exchange whose parent's 407 body is being dropped. */
  private dropping?: Exchange;

  protected onEvent(event: ProxyEvent): void {
    if (this.dropping) {
      if (event.kind !== 'message-end') return;
      const exchange = this.dropping;
      this.dropping = undefined;
      return this.emit(event.exchange === exchange ? event : messageEndEvent(exchange));
    }
    if (event.kind !== 'response-head' || event.head.status !== 407 || event.exchange.isConnect) return this.emit(event);
    const hop = event.exchange.via;
    if (hop === undefined || hop === 'direct' || hop.protocol === 'socks5') return this.emit(event);
    const refusal = new ProxyError(
      'ERR_PROXY_PARENT',
      `parent proxy ${hop.name} answered ${event.head.status}${event.head.reason ? ` ${event.head.reason}` : ''}`,
    );
    const { head, body } = errorResponseParts(refusal, false);
    this.dropping = event.exchange;
    this.emit(responseHeadEvent(head, event.exchange));
    if (event.exchange.request.method !== 'HEAD') this.emit(dataEvent(body));
  }
}

function compileChoice(choice: ProxyChoice, where: string, baseDir: string, caFile: Buffer | undefined): readonly UpstreamHop[] {
  if (choice === 'direct') return DIRECT;
  const items = typeof choice === 'string' ? [choice] : choice;
  return Object.freeze(
    items.map((item, i) => {
      const at = typeof choice === 'string' ? where : `${where}[${i}]`;
      if (typeof item === 'string') return parseHop(item, at, caFile);
      const ca = item.ca === undefined ? caFile : readPem(path.resolve(baseDir, item.ca), `${at}.ca`);
      return parseHop(item.url, `${at}.url`, ca);
    }),
  );
}

function readPem(file: string, where: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    throw new Error(`${where}: expected a readable PEM file, found ${file} failing with ${code ?? message}`, { cause: error });
  }
}

function compileHosts(globs: string[], where: string): (host: string) => boolean {
  globs.forEach((glob, i) => {
    if (!/^[A-Za-z0-9\-._~%:*?[\]{},!+()@^]+$/.test(glob)) {
      throw new Error(`${where}.hosts[${i}]: expected a host name glob like *.example.com, found ${JSON.stringify(glob)}`);
    }
  });
  return picomatch(globs.map(normalizeHost), { nocase: true, dot: true, strictBrackets: true });
}

/** Lower case, no trailing dot: `Example.COM.` is `example.com`. */
function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
