import { lookup } from 'node:dns/promises';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import picomatch from 'picomatch';
import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable, type InjectionToken } from 'tsyringe';
import type { ConnectionContext, Target } from '../core/context.js';
import { ProxyError } from '../core/errors.js';
import type { ProxyEvent, RequestHeadEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { GateStage, stage } from '../core/stage.js';

/** Resolves host names to the addresses `destination-policy` checks and pins. */
export interface DnsResolver {
  /** Every address of `host` (IPv4 and IPv6, as text); rejects when the name does not resolve. */
  lookup(host: string): Promise<string[]>;
}

/** Token for the {@link DnsResolver} service; register another (tests, a caching resolver, DoH, …). */
export const DnsResolver: InjectionToken<DnsResolver> = Symbol('DnsResolver');

/** The default resolver: the system's (`getaddrinfo`, as `net.connect` would use), every address. */
export class SystemDnsResolver implements DnsResolver {
  async lookup(host: string): Promise<string[]> {
    const found = await lookup(host, { all: true });
    return found.map((entry) => entry.address);
  }
}

/** One rule of `destination-policy`: it matches when every criterion it lists matches. */
export interface DestinationRule {
  /** `deny` refuses a matching request (403); `allow` passes it, still checked by `denyPrivate` when the rule has no `cidrs`. */
  action: 'allow' | 'deny';
  /** picomatch globs against the requested host name, case-insensitive (`*.example.com`). */
  hosts?: string[];
  /** IPv4/IPv6 CIDRs (or single addresses) against the address that will be dialled. */
  cidrs?: string[];
  /** Target ports. */
  ports?: number[];
}

/** Options of `destination-policy`. */
export interface DestinationPolicyOptions {
  /** Evaluated in order; the first rule that matches decides. */
  rules: DestinationRule[];
  /** What happens when no rule matches (and `denyPrivate` did not refuse). */
  default: 'allow' | 'deny';
  /** Refuse loopback, private, link-local, unique-local, unspecified, CGNAT and cloud metadata addresses. */
  denyPrivate: boolean;
  /** The only ports CONNECT may reach. */
  connectPorts: number[];
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [Address, number];

/** What `denyPrivate` refuses (IPv4-mapped IPv6 addresses are checked as IPv4). */
const PRIVATE_RANGES: readonly Range[] = [
  '0.0.0.0/8', // unspecified ("this network"; 0.0.0.0 reaches the local host)
  '127.0.0.0/8', // loopback
  '10.0.0.0/8', // RFC 1918
  '172.16.0.0/12',
  '192.168.0.0/16',
  '169.254.0.0/16', // link-local
  '100.64.0.0/10', // carrier-grade NAT (RFC 6598)
  '169.254.169.254/32', // cloud metadata (AWS, GCP, Azure, …)
  '100.100.100.200/32', // cloud metadata (Alibaba)
  '::/128', // unspecified
  '::1/128', // loopback
  'fe80::/10', // link-local
  'fc00::/7', // unique-local
  'fd00:ec2::254/128', // cloud metadata (AWS, IPv6)
].map((cidr) => ipaddr.parseCIDR(cidr));

interface CompiledRule {
  readonly index: number;
  readonly allow: boolean;
  readonly hosts?: (host: string) => boolean;
  readonly cidrs?: readonly Range[];
  readonly ports?: ReadonlySet<number>;
}

/** `allow`, or the message of the refusal; `address` means an address is needed to decide. */
type Verdict = { allow: true } | { allow: false; message: string } | 'address';

const ALLOW: Verdict = { allow: true };

/**
 * Allows or refuses each request by its destination (`exchange.target`, set by `http-forward` /
 * `connect-handler`, so it goes after them and before `upstream-dialer`). In order: a CONNECT to a
 * port outside `connectPorts` is refused; then the first matching rule decides — a `deny` refuses,
 * an `allow` that lists `cidrs` allows, an `allow` without `cidrs` allows unless `denyPrivate`
 * refuses the address; then `denyPrivate`; then `default`. When an address is needed (a rule with
 * `cidrs` is reached, or `denyPrivate`), a host name is resolved here through the `DnsResolver`
 * service and the target is pinned to the address that passed, so the dialer connects to exactly
 * the address that was checked (DNS rebinding cannot slip another one in); the Host header keeps
 * the name. Refusals are 403 (`ERR_PROXY_FORBIDDEN`), a name that does not resolve is 502.
 */
@injectable()
export class DestinationPolicyPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'destination-policy',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        rules: {
          type: 'array',
          default: [],
          description:
            'Evaluated in order, first match wins: { action: "allow"|"deny", hosts?: [glob], cidrs?: [cidr], ports?: [port] }; a rule matches when all it lists match. Place after http-forward and connect-handler.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['action'],
            properties: {
              action: { enum: ['allow', 'deny'], description: 'What a match does.' },
              hosts: {
                type: 'array',
                minItems: 1,
                items: { type: 'string' },
                description: 'Globs on the requested host name, case-insensitive (*.example.com).',
              },
              cidrs: {
                type: 'array',
                minItems: 1,
                items: { type: 'string' },
                description: 'IPv4/IPv6 CIDRs on the address dialled (names are resolved and pinned).',
              },
              ports: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1, maximum: 65535 }, description: 'Target ports.' },
            },
          },
        },
        default: { enum: ['allow', 'deny'], default: 'allow', description: 'Decision when no rule matches.' },
        denyPrivate: {
          type: 'boolean',
          default: false,
          description:
            'Refuse loopback, private, link-local, unique-local, unspecified, CGNAT and cloud metadata addresses (after the rules; an allow rule with cidrs overrides it).',
        },
        connectPorts: {
          type: 'array',
          default: [443],
          items: { type: 'integer', minimum: 1, maximum: 65535 },
          description: 'The only ports CONNECT may reach (checked first).',
        },
      },
    },
    after: ['head-parser'],
    before: ['upstream-dialer', 'upstream-proxy'],
  };
  readonly name = DestinationPolicyPlugin.manifest.name;
  private readonly rules: readonly CompiledRule[];
  private readonly connectPorts: ReadonlySet<number>;
  private readonly resolver: DnsResolver;

  constructor(
    @inject(PluginOptions) private readonly options: DestinationPolicyOptions,
    @inject(DnsResolver, { isOptional: true }) resolver?: DnsResolver,
  ) {
    this.rules = options.rules.map(compileRule);
    this.connectPorts = new Set(options.connectPorts);
    this.resolver = resolver ?? new SystemDnsResolver();
  }

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new PolicyGate(downstream, ctx, this));
  }

  /**
   * Checks one exchange: returns at once when no lookup is needed, else a promise. Refusals throw
   * (reject) a ProxyError with `answeredBy` set; an allowed name that needed an address is pinned.
   * @internal
   */
  check(exchange: Exchange): void | Promise<void> {
    const target = exchange.target;
    // Fail closed: a request with no target yet means the chain lists this plugin before the
    // routing plugins, and letting it through would let every request through unchecked.
    if (!target) throw new ProxyError('ERR_PROXY_INTERNAL', 'destination-policy saw a request with no target: list it after http-forward and connect-handler');
    if (exchange.isConnect && !this.connectPorts.has(target.port)) {
      throw this.refuse(exchange, `CONNECT to port ${target.port} is not allowed`);
    }
    const host = normalizeHost(target.host);
    if (net.isIP(host)) {
      const address = ipaddr.process(host);
      const verdict = this.decide(host, target.port, address);
      if (verdict !== 'address' && !verdict.allow) throw this.refuse(exchange, verdict.message);
      exchange.target = { host: address.toString(), port: target.port };
      return;
    }
    const verdict = this.decide(host, target.port, undefined);
    if (verdict !== 'address') {
      if (!verdict.allow) throw this.refuse(exchange, verdict.message);
      return;
    }
    return this.resolveAndCheck(exchange, host, target);
  }

  /**
   * The policy for one destination: first the rules, then `denyPrivate`, then the default.
   * Without an address, `'address'` when one is needed to decide.
   * @internal
   */
  decide(host: string, port: number, address: Address | undefined): Verdict {
    let allowedByName = false;
    for (const rule of this.rules) {
      if (rule.hosts && !rule.hosts(host)) continue;
      if (rule.ports && !rule.ports.has(port)) continue;
      if (rule.cidrs) {
        if (!address) return 'address';
        if (!rule.cidrs.some((range) => inRange(address, range))) continue;
      }
      if (!rule.allow) return { allow: false, message: `${authority(host, port)} denied by rule #${rule.index}` };
      // An allow that names addresses is final; one that names only hosts or ports still keeps
      // private addresses out (a name can be made to resolve anywhere).
      if (rule.cidrs) return ALLOW;
      allowedByName = true;
      break;
    }
    if (this.options.denyPrivate) {
      if (!address) return 'address';
      if (PRIVATE_RANGES.some((range) => inRange(address, range))) {
        return { allow: false, message: `denied: private address ${address.toString()}` };
      }
    }
    if (allowedByName || this.options.default === 'allow') return ALLOW;
    return { allow: false, message: `${authority(host, port)} denied by default policy` };
  }

  private async resolveAndCheck(exchange: Exchange, host: string, target: Target): Promise<void> {
    let found: string[];
    try {
      found = await this.resolver.lookup(host);
    } catch (error) {
      exchange.answeredBy = this.name;
      throw new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `host not found: ${host}`, { cause: error });
    }
    let first: Verdict | undefined;
    for (const text of found) {
      if (!ipaddr.isValid(text)) continue;
      const address = ipaddr.process(text);
      const verdict = this.decide(host, target.port, address);
      // Pin the first address that passed: the dialer connects to it and to nothing else.
      if (verdict !== 'address' && verdict.allow) {
        exchange.target = { host: address.toString(), port: target.port };
        return;
      }
      first ??= verdict;
    }
    if (first === undefined || first === 'address') {
      exchange.answeredBy = this.name;
      throw new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `host not found: ${host}`);
    }
    throw this.refuse(exchange, (first as { message: string }).message);
  }

  private refuse(exchange: Exchange, message: string): ProxyError {
    exchange.answeredBy = this.name;
    return new ProxyError('ERR_PROXY_FORBIDDEN', message);
  }
}

/** Runs the policy on each request head; waits (client held) while a name resolves. */
class PolicyGate extends GateStage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    ctx: ConnectionContext,
    private readonly plugin: DestinationPolicyPlugin,
  ) {
    super(downstream, ctx);
  }

  /** The last destination this connection was allowed to (as requested), and where it was pinned. */
  private lastConnect = false;
  private lastHost?: string;
  private lastPort = 0;
  private lastPinned?: Target;

  protected check(event: RequestHeadEvent): void | Promise<void> {
    const { exchange } = event;
    const target = exchange.target;
    // Kept-alive requests mostly repeat their destination: reuse the decision and the pinned
    // address (the same one that was checked, so nothing can rebind under us).
    if (target && target.host === this.lastHost && target.port === this.lastPort && exchange.isConnect === this.lastConnect) {
      exchange.target = this.lastPinned;
      return;
    }
    const result = this.plugin.check(exchange);
    if (result === undefined) return this.remember(exchange, target);
    return result.then(() => this.remember(exchange, target));
  }

  private remember(exchange: Exchange, requested: Target | undefined): void {
    this.lastConnect = exchange.isConnect;
    this.lastHost = requested?.host;
    this.lastPort = requested?.port ?? 0;
    this.lastPinned = exchange.target;
  }
}

/** Lower case, without the trailing dot of a fully qualified name (`Example.COM.` is `example.com`). */
function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function authority(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Whether an address (already `process`ed: IPv4-mapped IPv6 is IPv4) is in a range of either family. */
function inRange(address: Address, [network, bits]: Range): boolean {
  if (address.kind() === network.kind()) return address.match(network, bits);
  // An IPv4 address against an IPv6 range such as ::ffff:10.0.0.0/104.
  if (address.kind() === 'ipv4') return (address as ipaddr.IPv4).toIPv4MappedAddress().match(network, bits);
  return false;
}

function compileRule(rule: DestinationRule, index: number): CompiledRule {
  const where = `rules[${index}]`;
  return {
    index,
    allow: rule.action === 'allow',
    hosts: rule.hosts && compileHosts(rule.hosts, where),
    cidrs: rule.cidrs?.map((cidr, i) => parseRange(cidr, `${where}.cidrs[${i}]`)),
    ports: rule.ports && new Set(rule.ports),
  };
}

function compileHosts(globs: string[], where: string): (host: string) => boolean {
  globs.forEach((glob, i) => {
    if (!/^[A-Za-z0-9\-._~%:*?[\]{},!+()@^]+$/.test(glob)) {
      throw new Error(`${where}.hosts[${i}]: expected a host name glob like *.example.com, found ${JSON.stringify(glob)}`);
    }
    try {
      picomatch.makeRe(glob, { nocase: true, dot: true, strictBrackets: true });
    } catch (error) {
      throw new Error(`${where}.hosts[${i}]: expected a host name glob like *.example.com, found ${JSON.stringify(glob)}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  });
  return picomatch(globs.map(normalizeHost), { nocase: true, dot: true, strictBrackets: true });
}

/** A CIDR (`10.0.0.0/8`, `fc00::/7`) or a single address (`/32`, `/128`), in standard notation. */
function parseRange(text: string, where: string): Range {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  try {
    if (!net.isIP(address)) throw new Error('not an IPv4 or IPv6 address in standard notation');
    if (slash < 0) {
      const parsed = ipaddr.parse(address);
      return [parsed, parsed.kind() === 'ipv4' ? 32 : 128];
    }
    if (!/^\d{1,3}$/.test(text.slice(slash + 1))) throw new Error('malformed prefix length');
    return ipaddr.parseCIDR(text);
  } catch (error) {
    throw new Error(`${where}: expected an IPv4 or IPv6 CIDR like 10.0.0.0/8, found ${JSON.stringify(text)} (${(error as Error).message})`, { cause: error });
  }
}
