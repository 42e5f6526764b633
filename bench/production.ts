// 5. The cost of the production chain: proxyline with the default chain (no logger) against the
// full production chain (proxy-auth + destination-policy + rate-limit + access-log + metrics),
// on keep-alive requests/s and tunnel throughput, in one run. Limits are set far above the load
// so they never throttle: what is measured is the plugins' own cost per request and per byte.
// Rounds take turns between the chains, a fresh process each; medians with min–max.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { keepAliveLoad, type HttpLoad } from './http-load.js';
import type { HttpOrigin } from './http-origins.js';
import { cpuMs, stopChild } from './procs.js';
import { startProxyline, startProxylineWith, type Proxy } from './proxies.js';
import { spread, type Spread } from './report.js';
import { alternate, type Contender } from './rounds.js';
import { transfer, type Transfer } from './throughput.js';

const USER = 'bench';
const PASSWORD = 'bench-password';
const AUTHORIZATION = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

/** The production plugins, which the default chain does not have. */
export const PRODUCTION_PLUGINS = ['proxy-auth', 'destination-policy', 'rate-limit', 'access-log', 'metrics'];

/** `Proxy-Authorization` of the production chain's one user. */
export const PRODUCTION_AUTHORIZATION = AUTHORIZATION;

/** The production chain's entries (loopback allowed; limits far above any load). */
export function productionPlugins(tmp: string, connectPort: number): { name: string; options?: object }[] {
  return [
    { name: 'head-parser' },
    { name: 'connect-handler' },
    { name: 'http-forward' },
    { name: 'proxy-auth', options: { realm: 'bench', users: { [USER]: bcrypt.hashSync(PASSWORD, 10) } } },
    {
      name: 'destination-policy',
      options: { rules: [{ action: 'allow', cidrs: ['127.0.0.0/8'] }], default: 'deny', denyPrivate: true, connectPorts: [connectPort] },
    },
    { name: 'rate-limit', options: { scope: 'user', requestsPerSecond: 1_000_000, bytesPerSecond: 1e12 } },
    { name: 'upstream-dialer' },
    { name: 'byte-counter' },
    { name: 'access-log', options: { format: 'json', path: path.join(tmp, 'access.log') } },
    { name: 'metrics' },
  ];
}

/** plugins.json of the production chain. */
function productionConfig(tmp: string, connectPort: number): string {
  const file = path.join(tmp, 'plugins.production.json');
  writeFileSync(file, JSON.stringify({ plugins: productionPlugins(tmp, connectPort) }, null, 2));
  return file;
}

type Options = { bytes: number; timeoutMs: number; seconds: number; warmupSeconds: number; concurrency: number; rounds: number; tmp: string };

/** One round of one chain: keep-alive, then tunnels both ways, in one fresh process. */
interface ChainRun {
  keepAlive: HttpLoad & { cpuUsPerRequest: number };
  up: Transfer;
  down: Transfer;
}

/** One chain's rounds as medians with min–max. */
export interface ChainSummary {
  rps: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  cpuUsPerRequest: Spread;
  upMbps: Spread;
  downMbps: Spread;
  /** Summed over the rounds. */
  non2xx: number;
}

/** Both chains' summaries, and every round's keep-alive requests/s in order. */
export interface ProductionSection {
  default: ChainSummary;
  production: ChainSummary;
  rounds: { default: number[]; production: number[] };
}

async function chainRun(proxy: Proxy, ports: { throughput: number }, origin: HttpOrigin, options: Options, auth: boolean): Promise<ChainRun> {
  const load = {
    concurrency: options.concurrency,
    seconds: options.warmupSeconds,
    tmp: options.tmp,
    path: origin.path,
    headers: auth ? { 'Proxy-Authorization': AUTHORIZATION } : undefined,
  };
  if (options.warmupSeconds > 0) await keepAliveLoad(proxy.port, origin.port, load);
  const cpu0 = cpuMs(proxy.child.pid);
  const keepAlive = await keepAliveLoad(proxy.port, origin.port, { ...load, seconds: options.seconds });
  const cpuUsPerRequest = ((cpuMs(proxy.child.pid) - cpu0) * 1000) / Math.max(1, keepAlive.ok + keepAlive.non2xx);
  const extra = auth ? `Proxy-Authorization: ${AUTHORIZATION}\r\n` : '';
  const up = await transfer(proxy.port, proxy.child.pid, ports.throughput, 'up', options.bytes, options.timeoutMs, extra);
  const down = await transfer(proxy.port, proxy.child.pid, ports.throughput, 'down', options.bytes, options.timeoutMs, extra);
  return { keepAlive: { ...keepAlive, cpuUsPerRequest }, up, down };
}

function summarize(runs: ChainRun[]): ChainSummary {
  const numbers = (values: (number | undefined)[]) => values.filter((v): v is number => v !== undefined);
  return {
    rps: spread(runs.map((r) => r.keepAlive.rps)),
    p50Ms: spread(numbers(runs.map((r) => r.keepAlive.p50Ms))),
    p99Ms: spread(numbers(runs.map((r) => r.keepAlive.p99Ms))),
    cpuUsPerRequest: spread(runs.map((r) => r.keepAlive.cpuUsPerRequest)),
    upMbps: spread(runs.map((r) => r.up.mbps)),
    downMbps: spread(runs.map((r) => r.down.mbps)),
    non2xx: runs.reduce((sum, r) => sum + r.keepAlive.non2xx, 0),
  };
}

/**
 * Runs both chains `rounds` times taking turns (default, production, default, …), each round a
 * fresh process per chain: keep-alive to `origin` (warm-up first), then a tunnel each way. The
 * report takes medians (see rounds.ts for why fresh processes and turns).
 */
export async function productionSection(
  ports: { throughput: number },
  origin: HttpOrigin,
  options: Options,
  log: (text: string) => void,
): Promise<ProductionSection> {
  const config = productionConfig(options.tmp, ports.throughput);
  const chains: Contender<Proxy>[] = [
    { name: 'default', start: () => startProxyline(options.tmp, false), stop: (p) => stopChild(p.child) },
    { name: 'production', start: () => startProxylineWith('proxyline+prod', config, options.tmp), stop: (p) => stopChild(p.child) },
  ];
  const rounds = await alternate(chains, options.rounds, async (name, proxy, round) => {
    const run = await chainRun(proxy, ports, origin, options, name === 'production');
    log(`production round ${round + 1}: ${name} chain ${Math.round(run.keepAlive.rps)} req/s, ${run.up.mbps.toFixed(0)}/${run.down.mbps.toFixed(0)} MB/s`);
    return run;
  });
  const why = Object.entries(rounds.skipped).map(([name, reason]) => `${name} chain: ${reason}`);
  if (why.length) throw new Error(why.join('; '));
  const list = (name: string) => rounds.samples[name]!;
  return {
    default: summarize(list('default')),
    production: summarize(list('production')),
    rounds: { default: list('default').map((r) => r.keepAlive.rps), production: list('production').map((r) => r.keepAlive.rps) },
  };
}
