// 5. The cost of the production chain: proxyline with the default chain (no logger) against the
// full production chain (proxy-auth + destination-policy + rate-limit + access-log + metrics),
// on tunnel throughput and keep-alive requests/s, in one run. Limits are set far above the load
// so they never throttle: what is measured is the plugins' own cost per request and per byte.
// Each chain runs in its own processes, keep-alive runs taking turns, a fresh process each.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { keepAliveLoad, type HttpLoad } from './http-load.js';
import { cpuMs, stopChild } from './procs.js';
import { startProxyline, startProxylineWith, type Proxy } from './proxies.js';
import { transfer, type Transfer } from './throughput.js';

export interface ProductionResult {
  up: Transfer;
  down: Transfer;
  keepAlive: HttpLoad & { proxyCpuUsPerRequest: number };
}

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

type Options = { bytes: number; timeoutMs: number; seconds: number; concurrency: number; rounds: number; tmp: string };

/** Tunnel throughput both ways through one chain. */
async function tunnels(proxy: Proxy, port: number, options: Options, auth: boolean): Promise<Pick<ProductionResult, 'up' | 'down'>> {
  const extra = auth ? `Proxy-Authorization: ${AUTHORIZATION}\r\n` : '';
  const up = await transfer(proxy.port, proxy.child.pid, port, 'up', options.bytes, options.timeoutMs, extra);
  const down = await transfer(proxy.port, proxy.child.pid, port, 'down', options.bytes, options.timeoutMs, extra);
  return { up, down };
}

/** One keep-alive run through one chain (1 s warm-up first: pool, caches, JIT). */
async function keepAliveRun(proxy: Proxy, port: number, options: Options, auth: boolean): Promise<ProductionResult['keepAlive']> {
  const load = { concurrency: options.concurrency, seconds: 1, tmp: options.tmp, headers: auth ? { 'Proxy-Authorization': AUTHORIZATION } : undefined };
  await keepAliveLoad(proxy.port, port, load);
  const cpu0 = cpuMs(proxy.child.pid);
  const keepAlive = await keepAliveLoad(proxy.port, port, { ...load, seconds: options.seconds });
  const proxyCpuUsPerRequest = ((cpuMs(proxy.child.pid) - cpu0) * 1000) / Math.max(1, keepAlive.ok);
  return { ...keepAlive, proxyCpuUsPerRequest };
}

/** Both chains' results, and every keep-alive round's requests/s. */
export interface ProductionSection {
  default: ProductionResult;
  production: ProductionResult;
  /** Keep-alive requests/s of each round, in order, per chain (the results keep each chain's best). */
  rounds: { default: number[]; production: number[] };
}

/**
 * Runs both chains: tunnels once each (both processes started at once), then `rounds` keep-alive
 * runs taking turns (default, production, default, …), each in a fresh process, keeping each
 * chain's best. Load from elsewhere on a shared machine comes in bursts of seconds, and one
 * process can run up to twice as slow as another of the same build for its whole life:
 * alternating lets both chains meet the same bursts, fresh processes keep one slow process from
 * deciding a chain's figure, and the best run of each is the one least disturbed (as in section 1).
 */
export async function productionSection(
  ports: { throughput: number; keepAlive: number },
  options: Options,
  log: (text: string) => void,
): Promise<ProductionSection> {
  const config = productionConfig(options.tmp, ports.throughput);
  const start = { default: () => startProxyline(options.tmp, false), production: () => startProxylineWith('proxyline+prod', config, options.tmp) };
  const tunnel = {} as Record<'default' | 'production', Pick<ProductionResult, 'up' | 'down'>>;
  const plain = await start.default();
  let prod: Proxy | undefined;
  try {
    prod = await start.production();
    tunnel.default = await tunnels(plain, ports.throughput, options, false);
    tunnel.production = await tunnels(prod, ports.throughput, options, true);
  } finally {
    await stopChild(plain.child);
    if (prod) await stopChild(prod.child);
  }
  const best: Partial<Record<'default' | 'production', ProductionResult['keepAlive']>> = {};
  const rounds = { default: [] as number[], production: [] as number[] };
  for (let round = 0; round < Math.max(1, options.rounds); round++) {
    for (const chain of ['default', 'production'] as const) {
      const proxy = await start[chain]();
      try {
        const run = await keepAliveRun(proxy, ports.keepAlive, options, chain === 'production');
        rounds[chain].push(run.rps);
        log(`production round ${round + 1}: ${chain} chain ${Math.round(run.rps)} req/s`);
        if (!best[chain] || run.rps > best[chain].rps) best[chain] = run;
      } finally {
        await stopChild(proxy.child);
      }
    }
  }
  return {
    default: { ...tunnel.default, keepAlive: best.default! },
    production: { ...tunnel.production, keepAlive: best.production! },
    rounds,
  };
}
