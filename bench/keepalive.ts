// 4. Keep-alive: `concurrency` clients, each on one kept-alive connection, request → whole
// response for `seconds`, straight to the origin (the latency reference) and through each proxy
// (fresh process, 1 s warm-up first). The keep-alive origin counts the TCP connections it
// accepts; the difference over a measured run gives upstream connections per 1,000 requests.
import net from 'node:net';
import { keepAliveLoad, type HttpLoad } from './http-load.js';
import { cpuMs, stopChild } from './procs.js';
import { startBaseline, startProxyline, startProxyPackage, startSquid, startTinyproxy, which, type Proxy } from './proxies.js';

export interface KeepAliveResult extends HttpLoad {
  /** TCP connections the origin accepted during the measured run (the warm-up's pool is reused). */
  originConnections: number;
  /** TCP connections the origin accepted during the warm-up before it. */
  warmupOriginConnections: number;
  /** originConnections × 1000 / requests. */
  connectionsPer1000: number;
  /** p50 minus the direct run's p50, in ms (undefined for direct itself). */
  addedP50Ms?: number;
  /** Proxy process CPU per request (undefined for direct). */
  proxyCpuUsPerRequest?: number;
}

export interface KeepAliveOptions {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  tmp: string;
}

export interface KeepAliveSection {
  /** Column order: direct first, then the proxies that ran. */
  columns: string[];
  results: Record<string, KeepAliveResult>;
  /** Proxies that did not run, and why. */
  skipped: Record<string, string>;
}

/** The keep-alive origin's count of accepted connections, from its control port. */
function originCount(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('origin count: no answer within 5 s')));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('error', reject);
    socket.on('end', () => resolve(Number(text.trim())));
  });
}

export async function keepAliveSection(ports: { keepAlive: number; count: number }, options: KeepAliveOptions, log: (text: string) => void): Promise<KeepAliveSection> {
  const { tmp, warmupSeconds } = options;
  const results: Record<string, KeepAliveResult> = {};
  const skipped: Record<string, string> = {};
  const columns: string[] = [];

  async function measure(name: string, proxy: Proxy | undefined): Promise<void> {
    const warm0 = await originCount(ports.count);
    if (warmupSeconds > 0) await keepAliveLoad(proxy?.port, ports.keepAlive, { ...options, seconds: warmupSeconds });
    const count0 = await originCount(ports.count);
    const cpu0 = proxy ? cpuMs(proxy.child.pid) : 0;
    const load = await keepAliveLoad(proxy?.port, ports.keepAlive, options);
    const cpu = proxy ? cpuMs(proxy.child.pid) - cpu0 : 0;
    const originConnections = (await originCount(ports.count)) - count0;
    const requests = Math.max(1, load.ok + load.non2xx);
    const direct = results.direct?.p50Ms;
    results[name] = {
      ...load,
      originConnections,
      warmupOriginConnections: count0 - warm0,
      connectionsPer1000: (originConnections * 1000) / requests,
      addedP50Ms: proxy && direct !== undefined && load.p50Ms !== undefined ? load.p50Ms - direct : undefined,
      proxyCpuUsPerRequest: proxy ? (cpu * 1000) / requests : undefined,
    };
    columns.push(name);
    log(`keep-alive ${name}: ${load.rps.toFixed(0)} req/s, p50 ${load.p50Ms?.toFixed(2)} ms, ${originConnections} origin connections`);
  }

  await measure('direct', undefined);

  const tinyproxy = which('tinyproxy');
  const squid = which('squid') ?? ['/usr/sbin/squid', '/usr/local/sbin/squid'].find((p) => which(p));
  const starters: [string, (() => Promise<Proxy>) | string][] = [
    ['proxyline', () => startProxyline(tmp, false)],
    ['baseline', () => startBaseline(tmp)],
    ['proxy-package', () => startProxyPackage(tmp)],
    ['tinyproxy', tinyproxy ? () => startTinyproxy(tmp, tinyproxy) : 'not installed'],
    ['squid', squid ? () => startSquid(tmp, squid) : 'not installed'],
  ];
  for (const [name, start] of starters) {
    if (typeof start === 'string') {
      skipped[name] = start;
      continue;
    }
    let proxy: Proxy | undefined;
    try {
      proxy = await start();
    } catch (error) {
      skipped[name] = `failed to start: ${(error as Error).message}`;
      continue;
    }
    try {
      await measure(name, proxy);
    } catch (error) {
      skipped[name] = `run failed: ${(error as Error).message.split('\n')[0]}`;
    } finally {
      await stopChild(proxy.child);
    }
  }
  return { columns, results, skipped };
}
