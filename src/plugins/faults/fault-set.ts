import { STATUS_CODES } from 'node:http';
import picomatch from 'picomatch';
import { ProxyError } from '../../core/errors.js';
import type { Exchange, FaultDecision, LocalReply } from '../../core/exchange.js';
import type { RequestHead } from '../../core/http/head.js';
import type { FaultConfig, FaultDirection, FaultMatch, StreamFaultConfig } from './config.js';
import { firstDraw, fold, hashText, Random } from './random.js';

/** One byte-stream fault that fired for one direction, with the seed of its own generator. */
export interface StreamSpec {
  /** The fault as configured. */
  readonly config: StreamFaultConfig;
  /** Seed of the generator its `random()` draws from: per decision and direction. */
  readonly seed: number;
}

/** What fired for one exchange, for the stages to apply. */
export interface FaultPlan {
  /** Ms the request waits before going upstream (0: none). */
  upstreamDelayMs: number;
  /** Ms the response waits before its head goes to the client (0: none). */
  downstreamDelayMs: number;
  /** Response body bytes the client gets before the connection closes (-1: no cut). */
  cutAfterBytes: number;
  /** Byte-stream faults on the request body (a tunnel: client → origin), in list order. */
  upstream?: StreamSpec[];
  /** Byte-stream faults on the response body (a tunnel: origin → client), in list order. */
  downstream?: StreamSpec[];
}

/** Tags folded into a decision's state for the generator of each direction. */
const UPSTREAM = 1;
const DOWNSTREAM = 2;

/** What a fault that draws nothing records as its parameters. */
const NO_PARAMS: Readonly<Record<string, number>> = Object.freeze({});

/** A fault ready to be drawn: its hash (seed and name), its matchers, what it does when it fires. */
interface CompiledFault {
  readonly config: FaultConfig;
  /** hashText(seed, name): a decision folds the connection and request ordinals into it. */
  readonly hash: number;
  readonly hosts?: (host: string) => boolean;
  readonly methods?: ReadonlySet<string>;
  readonly paths?: (path: string) => boolean;
  readonly ports?: ReadonlySet<number>;
  /** `abort`: the answer, made once. */
  readonly reply?: LocalReply;
  /** `drop`: the error that closes the connection, made once. */
  readonly dropError?: ProxyError;
}

/**
 * An immutable, compiled list of faults with its seed. The plugin swaps a new one in when the
 * list changes (the admin routes); a request draws from the one in force when its head arrives.
 */
export class FaultSet {
  private readonly compiled: readonly CompiledFault[];

  /** Throws an Error whose message starts with the JSON path of the bad fault (`faults[2].name: …`). */
  constructor(
    /** The seed every decision starts from. */
    readonly seed: number,
    /** The faults as validated, in order. */
    readonly faults: readonly FaultConfig[],
  ) {
    const seen = new Map<string, number>();
    faults.forEach((fault, index) => {
      const earlier = seen.get(fault.name);
      if (earlier !== undefined)
        throw new Error(`faults[${index}].name: expected a unique name, found ${JSON.stringify(fault.name)} (faults[${earlier}] has it)`);
      seen.set(fault.name, index);
    });
    this.compiled = faults.map((fault, index) => compile(seed, fault, index));
  }

  /** Whether a fault of this name is in the list. */
  has(name: string): boolean {
    return this.faults.some((fault) => fault.name === name);
  }

  /**
   * Draws every fault for one request (or tunnel, at its CONNECT) of the `connection`-th
   * connection: records those that fired on `exchange.faults`, answers it in place for `abort`
   * and `drop`, and returns what the stages must apply (undefined: nothing). Allocates nothing
   * when no fault fires.
   */
  draw(connection: number, exchange: Exchange, head: RequestHead, answeredBy: string): FaultPlan | undefined {
    let plan: FaultPlan | undefined;
    let answered = false;
    for (const fault of this.compiled) {
      const { config } = fault;
      const { type } = config;
      if ((type === 'abort' || type === 'drop') && answered) continue; // one answer only
      if (type === 'cut-response' && exchange.isConnect) continue; // a tunnel has no response body
      if (!matches(fault, exchange, head)) continue;
      const state = fold(fold(fault.hash, connection), exchange.id);
      if (!(firstDraw(state) < config.probability)) continue;
      plan ??= { upstreamDelayMs: 0, downstreamDelayMs: 0, cutAfterBytes: -1 };
      let params = NO_PARAMS;
      let direction: FaultDirection = 'upstream';
      switch (config.type) {
        case 'abort':
          exchange.reply = fault.reply;
          exchange.answeredBy = answeredBy;
          answered = true;
          break;
        case 'drop':
          exchange.error = fault.dropError;
          exchange.answeredBy = answeredBy;
          exchange.closeClient = true;
          answered = true;
          break;
        case 'delay': {
          const random = new Random(state);
          random.next(); // the draw that decided it fired
          const delayMs = config.jitterMs > 0 ? Math.max(0, config.delayMs + Math.round((2 * random.next() - 1) * config.jitterMs)) : config.delayMs;
          params = { delayMs };
          direction = config.direction;
          if (direction !== 'downstream') plan.upstreamDelayMs += delayMs;
          if (direction !== 'upstream') plan.downstreamDelayMs += delayMs;
          break;
        }
        case 'cut-response':
          direction = 'downstream';
          plan.cutAfterBytes = plan.cutAfterBytes < 0 ? config.afterBytes : Math.min(plan.cutAfterBytes, config.afterBytes);
          break;
        default:
          direction = config.direction;
          if (direction !== 'downstream') (plan.upstream ??= []).push({ config, seed: fold(state, UPSTREAM) });
          if (direction !== 'upstream') (plan.downstream ??= []).push({ config, seed: fold(state, DOWNSTREAM) });
      }
      const decision: FaultDecision = { name: config.name, type, direction, params };
      (exchange.faults ??= []).push(decision);
    }
    return plan;
  }
}

/** Whether every criterion of the fault's `match` holds for this request. */
function matches(fault: CompiledFault, exchange: Exchange, head: RequestHead): boolean {
  if (fault.methods && !fault.methods.has(head.method)) return false;
  const target = exchange.target;
  if (fault.ports && !(target && fault.ports.has(target.port))) return false;
  // The globs ignore case: only a trailing dot needs taking off (rare, so usually no new string).
  if (fault.hosts && !(target && fault.hosts(target.host.endsWith('.') ? target.host.slice(0, -1) : target.host))) return false;
  if (fault.paths) {
    const path = requestPath(head.target);
    if (path === undefined || !fault.paths(path)) return false;
  }
  return true;
}

/** The path of a request target without its query: origin-form or absolute-form; undefined for authority-form and `*`. */
export function requestPath(target: string): string | undefined {
  let start = 0;
  if (!target.startsWith('/')) {
    const scheme = target.indexOf('://');
    if (scheme < 0) return undefined;
    // The authority ends at the path, or at the query of a URL without one (`http://h?q=/x`).
    start = scheme + 3;
    while (start < target.length && target[start] !== '/' && target[start] !== '?') start++;
    if (target[start] !== '/') return '/';
  }
  const query = target.indexOf('?', start);
  return query < 0 ? (start === 0 ? target : target.slice(start)) : target.slice(start, query);
}

/** Lower case, without the trailing dot of a fully qualified name. */
function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function compile(seed: number, config: FaultConfig, index: number): CompiledFault {
  const where = `faults[${index}]`;
  const match: FaultMatch = config.match ?? {};
  return {
    config,
    hash: hashText(seed, config.name),
    hosts: match.hosts && globs(match.hosts.map(normalizeHost), `${where}.match.hosts`, true),
    methods: match.methods && new Set(match.methods.map((method) => method.toUpperCase())),
    paths: match.paths && globs(match.paths, `${where}.match.paths`, false),
    ports: match.ports && new Set(match.ports),
    reply: config.type === 'abort' ? abortReply(config.status, config.body ?? '') : undefined,
    dropError: config.type === 'drop' ? new ProxyError('ERR_PROXY_ABORTED', `dropped by fault "${config.name}"`) : undefined,
  };
}

/** A matcher for picomatch globs; a glob picomatch cannot read is an error at its path. */
function globs(patterns: string[], where: string, nocase: boolean): (text: string) => boolean {
  const options = { nocase, dot: true, strictBrackets: true };
  patterns.forEach((pattern, i) => {
    try {
      picomatch.makeRe(pattern, options);
    } catch (error) {
      throw new Error(`${where}[${i}]: expected a glob, found ${JSON.stringify(pattern)}: ${(error as Error).message}`, { cause: error });
    }
  });
  return picomatch(patterns, options);
}

/** The answer of an `abort`: its status, a text body, framed by Content-Length. */
function abortReply(status: number, text: string): LocalReply {
  const body = Buffer.from(text);
  return {
    head: {
      version: '1.1',
      status,
      reason: STATUS_CODES[status] ?? 'Unknown',
      headers: [
        ['Content-Type', 'text/plain; charset=utf-8'],
        ['Content-Length', String(body.length)],
      ],
    },
    body,
  };
}
