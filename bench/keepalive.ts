// Keep-alive HTTP: `concurrency` clients, each on one kept-alive connection, request → whole
// response for `seconds`, through each contender and straight to the origin (`direct`, the
// reference), against every origin in turn (nginx, then node:http). Rounds alternate across the
// contenders, each round a fresh process that serves every origin (1 s warm-up each, not
// counted: it fills any upstream pool); the report takes medians over the rounds. Also the proxy's
// CPU per request (its process and its children: the workers of `--workers 2`) and the origin
// connections it opened per 1,000 requests.
import { keepAliveLoad, type HttpLoad } from './http-load.js';
import type { HttpOrigin } from './http-origins.js';
import { treeCpuMs } from './procs.js';
import type { Proxy } from './proxies.js';
import { spread, type Spread } from './report.js';
import { alternate, type Contender } from './rounds.js';

/** One measured run through one contender to one origin. */
export interface KeepAliveRun extends HttpLoad {
  /** Proxy CPU per request, its children included (undefined for direct). */
  cpuUsPerRequest?: number;
  /** TCP connections the origin accepted during the warm-up and during the measured run (undefined if it cannot tell). */
  warmupOriginConnections?: number;
  originConnections?: number;
}

/** A contender's runs against one origin, as medians with min–max. */
export interface KeepAliveSummary {
  rps: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  cpuUsPerRequest: Spread;
  /** Origin connections × 1000 / requests over the measured runs. */
  connectionsPer1000: Spread;
  /** The best round's requests/s, printed beside the median, never instead of it. */
  bestRps: number;
  /** Summed over the rounds. */
  non2xx: number;
  errors: number;
}

export interface KeepAliveOptions {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  tmp: string;
}

/** Per origin (by name): every contender's runs and their summary. */
export interface KeepAliveSection {
  /** Contenders that ran, in column order (direct first). */
  columns: string[];
  runs: Record<string, Record<string, KeepAliveRun[]>>;
  summary: Record<string, Record<string, KeepAliveSummary>>;
  /** Contenders that did not run, and why. */
  skipped: Record<string, string>;
}

const NONE = { median: NaN, min: NaN, max: NaN };
const defined = (values: (number | undefined)[]) => values.filter((v): v is number => v !== undefined && !Number.isNaN(v));

function summarize(runs: KeepAliveRun[]): KeepAliveSummary {
  const conns = runs.filter((r) => r.originConnections !== undefined);
  return {
    rps: spread(runs.map((r) => r.rps)),
    p50Ms: spread(defined(runs.map((r) => r.p50Ms))),
    p99Ms: spread(defined(runs.map((r) => r.p99Ms))),
    cpuUsPerRequest: runs.some((r) => r.cpuUsPerRequest !== undefined) ? spread(defined(runs.map((r) => r.cpuUsPerRequest))) : NONE,
    connectionsPer1000: conns.length ? spread(conns.map((r) => (r.originConnections! * 1000) / Math.max(1, r.ok + r.non2xx))) : NONE,
    bestRps: Math.max(...runs.map((r) => r.rps)),
    non2xx: runs.reduce((sum, r) => sum + r.non2xx, 0),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
  };
}

/** Runs the section over `contenders` (plus `direct`) and `origins`. */
export async function keepAliveSection(
  origins: HttpOrigin[],
  contenders: Contender<Proxy>[],
  options: KeepAliveOptions,
  log: (text: string) => void,
): Promise<KeepAliveSection> {
  const { warmupSeconds } = options;
  /** Connections the origin accepted since `before`. */
  const since = async (origin: HttpOrigin, before: number | undefined) => {
    const now = await origin.connections();
    return before === undefined || now === undefined ? undefined : now - before;
  };

  async function measure(name: string, proxy: Proxy | undefined, origin: HttpOrigin, round: number): Promise<KeepAliveRun> {
    const load = { ...options, path: origin.path };
    const warm0 = await origin.connections();
    if (warmupSeconds > 0) await keepAliveLoad(proxy?.port, origin.port, { ...load, seconds: warmupSeconds });
    const count0 = await origin.connections();
    const cpu0 = proxy ? treeCpuMs(proxy.child.pid) : 0;
    const result = await keepAliveLoad(proxy?.port, origin.port, load);
    const cpu = proxy ? treeCpuMs(proxy.child.pid) - cpu0 : 0;
    const originConnections = await since(origin, count0);
    const requests = Math.max(1, result.ok + result.non2xx);
    log(
      `keep-alive round ${round + 1} ${origin.name} ${name}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50Ms?.toFixed(2)} ms, p99 ${result.p99Ms?.toFixed(2)} ms, ${originConnections ?? '?'} origin connections`,
    );
    return {
      ...result,
      originConnections,
      warmupOriginConnections: warm0 === undefined || count0 === undefined ? undefined : count0 - warm0,
      cpuUsPerRequest: proxy ? (cpu * 1000) / requests : undefined,
    };
  }

  const direct: Contender<Proxy | undefined> = { name: 'direct', start: () => Promise.resolve(undefined), stop: () => Promise.resolve() };
  const all: Contender<Proxy | undefined>[] = [
    direct,
    ...contenders.map((c) => ({ ...c, stop: (p: Proxy | undefined) => (p ? c.stop(p) : Promise.resolve()) })),
  ];
  const rounds = await alternate(all, options.rounds, async (name, proxy, round) => {
    const perOrigin: Record<string, KeepAliveRun> = {};
    for (const origin of origins) perOrigin[origin.name] = await measure(name, proxy, origin, round);
    return perOrigin;
  });
  const runs: KeepAliveSection['runs'] = {};
  const summary: KeepAliveSection['summary'] = {};
  for (const origin of origins) {
    runs[origin.name] = {};
    summary[origin.name] = {};
    for (const name of rounds.columns) {
      const list = rounds.samples[name]!.map((perOrigin) => perOrigin[origin.name]!);
      runs[origin.name]![name] = list;
      summary[origin.name]![name] = summarize(list);
    }
  }
  return { columns: rounds.columns, runs, summary, skipped: rounds.skipped };
}
