// 4. Keep-alive: `concurrency` clients, each on one kept-alive connection, request → whole
// response for `seconds`, straight to the origin (the latency reference) and through each proxy
// (fresh process, 1 s warm-up first), `rounds` times round-robin across the proxies; each proxy
// keeps its run with the most requests/s (bursts of load from elsewhere last seconds and come at
// random: taking turns meets every proxy with them alike, and the best run is the least hit). The keep-alive origin counts the TCP connections it
// accepts; the difference over a measured run gives upstream connections per 1,000 requests.
// Direct runs twice, before and after the proxies, and the run with the lower p50 is the
// reference: a one-off stall there (GC in the origin right after the idle section, a burst of
// load elsewhere) would otherwise shrink every proxy's added p50.
import net from 'node:net';
import { keepAliveLoad, type HttpLoad } from './http-load.js';
import { stopChild, treeCpuMs } from './procs.js';
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
  /** Runs per proxy, round-robin across the proxies, each in a fresh process; the best is kept. */
  rounds: number;
  tmp: string;
}

export interface KeepAliveSection {
  /** Column order: direct first, then the proxies that ran. */
  columns: string[];
  results: Record<string, KeepAliveResult>;
  /** Proxies that did not run, and why. */
  skipped: Record<string, string>;
  /** Both direct runs (results.direct is the one with the lower p50). */
  directRuns: KeepAliveResult[];
  /** Requests/s and p50 of every round, per proxy, in order (results keep each proxy's best). */
  rounds: Record<string, { rps: number; p50Ms?: number }[]>;
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

export async function keepAliveSection(
  ports: { keepAlive: number; count: number },
  options: KeepAliveOptions,
  log: (text: string) => void,
): Promise<KeepAliveSection> {
  const { tmp, warmupSeconds } = options;
  const results: Record<string, KeepAliveResult> = {};
  const skipped: Record<string, string> = {};
  const columns: string[] = [];

  async function measure(name: string, proxy: Proxy | undefined): Promise<KeepAliveResult> {
    const warm0 = await originCount(ports.count);
    if (warmupSeconds > 0) await keepAliveLoad(proxy?.port, ports.keepAlive, { ...options, seconds: warmupSeconds });
    const count0 = await originCount(ports.count);
    // With its children: `proxyline --workers 2` serves from its workers.
    const cpu0 = proxy ? treeCpuMs(proxy.child.pid) : 0;
    const load = await keepAliveLoad(proxy?.port, ports.keepAlive, options);
    const cpu = proxy ? treeCpuMs(proxy.child.pid) - cpu0 : 0;
    const originConnections = (await originCount(ports.count)) - count0;
    const requests = Math.max(1, load.ok + load.non2xx);
    log(`keep-alive ${name}: ${load.rps.toFixed(0)} req/s, p50 ${load.p50Ms?.toFixed(2)} ms, ${originConnections} origin connections`);
    return {
      ...load,
      originConnections,
      warmupOriginConnections: count0 - warm0,
      connectionsPer1000: (originConnections * 1000) / requests,
      proxyCpuUsPerRequest: proxy ? (cpu * 1000) / requests : undefined,
    };
  }

  const direct = [await measure('direct', undefined)];
  columns.push('direct');

  const tinyproxy = which('tinyproxy');
  const squid = which('squid') ?? ['/usr/sbin/squid', '/usr/local/sbin/squid'].find((p) => which(p));
  const starters: [string, (() => Promise<Proxy>) | string][] = [
    ['proxyline', () => startProxyline(tmp, false)],
    ['proxyline --workers 2', () => startProxyline(tmp, false, false, 2)],
    ['baseline', () => startBaseline(tmp)],
    ['proxy-package', () => startProxyPackage(tmp)],
    ['tinyproxy', tinyproxy ? () => startTinyproxy(tmp, tinyproxy) : 'not installed'],
    ['squid', squid ? () => startSquid(tmp, squid) : 'not installed'],
  ];
  const rounds: Record<string, { rps: number; p50Ms?: number }[]> = {};
  for (let round = 0; round < Math.max(1, options.rounds); round++) {
    for (const [name, start] of starters) {
      if (typeof start === 'string') {
        skipped[name] = start;
        continue;
      }
      if (skipped[name]) continue; // it failed in an earlier round
      let proxy: Proxy | undefined;
      try {
        proxy = await start();
      } catch (error) {
        skipped[name] = `failed to start: ${(error as Error).message}`;
        continue;
      }
      try {
        const result = await measure(name, proxy);
        (rounds[name] ??= []).push({ rps: result.rps, p50Ms: result.p50Ms });
        if (!results[name] || result.rps > results[name].rps) results[name] = result;
        if (!columns.includes(name)) columns.push(name);
      } catch (error) {
        skipped[name] = `run failed: ${(error as Error).message.split('\n')[0]}`;
      } finally {
        await stopChild(proxy.child);
      }
    }
  }
  for (const name of Object.keys(skipped)) {
    delete results[name];
    if (columns.includes(name)) columns.splice(columns.indexOf(name), 1);
  }
  direct.push(await measure('direct', undefined));
  const reference = direct.reduce((best, run) => ((run.p50Ms ?? Infinity) < (best.p50Ms ?? Infinity) ? run : best));
  results.direct = reference;
  for (const name of columns) {
    const p50 = results[name]!.p50Ms;
    if (name !== 'direct' && p50 !== undefined && reference.p50Ms !== undefined) results[name]!.addedP50Ms = p50 - reference.p50Ms;
  }
  return { columns, results, skipped, directRuns: direct, rounds };
}
