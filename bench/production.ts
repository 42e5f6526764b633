// 5. The cost of the production chain: proxyline with the default chain (no logger) against the
// full production chain (proxy-auth + destination-policy + rate-limit + access-log + metrics),
// on tunnel throughput and keep-alive requests/s, in one run. Limits are set far above the load
// so they never throttle: what is measured is the plugins' own cost per request and per byte.
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

/** plugins.json of the production chain, allowing loopback (where the bench's origins are). */
function productionConfig(tmp: string, connectPort: number): string {
  const file = path.join(tmp, 'plugins.production.json');
  const plugins = [
    { name: 'head-parser' },
    { name: 'connect-handler' },
    { name: 'http-forward' },
    { name: 'proxy-auth', options: { realm: 'bench', users: { [USER]: bcrypt.hashSync(PASSWORD, 10) } } },
    { name: 'destination-policy', options: { rules: [{ action: 'allow', cidrs: ['127.0.0.0/8'] }], default: 'deny', denyPrivate: true, connectPorts: [connectPort] } },
    { name: 'rate-limit', options: { scope: 'user', requestsPerSecond: 1_000_000, bytesPerSecond: 1e12 } },
    { name: 'upstream-dialer' },
    { name: 'byte-counter' },
    { name: 'access-log', options: { format: 'json', path: path.join(tmp, 'access.log') } },
    { name: 'metrics' },
  ];
  writeFileSync(file, JSON.stringify({ plugins }, null, 2));
  return file;
}

async function measure(proxy: Proxy, ports: { throughput: number; keepAlive: number }, options: { bytes: number; timeoutMs: number; seconds: number; concurrency: number; tmp: string }, auth: boolean): Promise<ProductionResult> {
  const extra = auth ? `Proxy-Authorization: ${AUTHORIZATION}\r\n` : '';
  const up = await transfer(proxy.port, proxy.child.pid, ports.throughput, 'up', options.bytes, options.timeoutMs, extra);
  const down = await transfer(proxy.port, proxy.child.pid, ports.throughput, 'down', options.bytes, options.timeoutMs, extra);
  const load = { concurrency: options.concurrency, seconds: 1, tmp: options.tmp, headers: auth ? { 'Proxy-Authorization': AUTHORIZATION } : undefined };
  await keepAliveLoad(proxy.port, ports.keepAlive, load); // warm-up: pool, caches, JIT
  const cpu0 = cpuMs(proxy.child.pid);
  const keepAlive = await keepAliveLoad(proxy.port, ports.keepAlive, { ...load, seconds: options.seconds });
  const proxyCpuUsPerRequest = ((cpuMs(proxy.child.pid) - cpu0) * 1000) / Math.max(1, keepAlive.ok);
  return { up, down, keepAlive: { ...keepAlive, proxyCpuUsPerRequest } };
}

/** Runs the default chain, then the production chain, each in a fresh process. */
export async function productionSection(
  ports: { throughput: number; keepAlive: number },
  options: { bytes: number; timeoutMs: number; seconds: number; concurrency: number; tmp: string },
  log: (text: string) => void,
): Promise<Record<'default' | 'production', ProductionResult>> {
  const plain = await startProxyline(options.tmp, false);
  let base: ProductionResult;
  try {
    base = await measure(plain, ports, options, false);
  } finally {
    await stopChild(plain.child);
  }
  log(`production: default chain ${Math.round(base.keepAlive.rps)} req/s`);
  const prod = await startProxylineWith('proxyline+prod', productionConfig(options.tmp, ports.throughput), options.tmp);
  let production: ProductionResult;
  try {
    production = await measure(prod, ports, options, true);
  } finally {
    await stopChild(prod.child);
  }
  log(`production: production chain ${Math.round(production.keepAlive.rps)} req/s`);
  return { default: base, production };
}
