// Idle tunnels: open many CONNECT tunnels, measure the proxy's RSS and fds, close them, and see
// whether RSS and fds come back; rounds across the contenders (idleSection).
import { fdCount, probeHeap, rssKiB, type HeapProbe } from './procs.js';
import type { Proxy } from './proxies.js';
import { spread, type Spread } from './report.js';
import { alternate, type Contender } from './rounds.js';
import { openTunnel } from './tunnel.js';
import type net from 'node:net';

export interface IdleResult {
  tunnels: number;
  failed: number;
  establishMs: number;
  rssBeforeKiB: number;
  rssOpenKiB: number;
  rssAfterKiB: number;
  /** (RSS with the tunnels open − RSS before) / tunnels. */
  kibPerTunnel: number;
  fdsBefore: number;
  fdsOpen: number;
  fdsAfter: number;
  /** After a forced full GC (bench/heap-probe.js), if the proxy was started with the probe. */
  gcBefore?: HeapProbe;
  gcOpen?: HeapProbe;
  gcAfter?: HeapProbe;
  /** (RSS after GC with the tunnels open − RSS after GC before) / tunnels. */
  kibPerTunnelAfterGc?: number;
  /** The same for the JS heap (heapUsed). */
  heapKibPerTunnel?: number;
  /** How long after closing the fds took to come back (or the wait limit). */
  drainMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opening stops after this long, however many tunnels are open by then. */
const OPEN_LIMIT_MS = 30_000;

/** Opens `count` tunnels, at most `parallel` handshakes at a time; failures are counted, not thrown. */
async function openMany(proxyPort: number, originPort: number, count: number, parallel: number): Promise<{ sockets: net.Socket[]; failed: number }> {
  const sockets: net.Socket[] = [];
  let failed = 0;
  let next = 0;
  const deadline = Date.now() + OPEN_LIMIT_MS;
  const worker = async () => {
    while (next < count && Date.now() < deadline) {
      next++;
      try {
        sockets.push((await openTunnel(proxyPort, originPort)).socket);
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { sockets, failed };
}

async function closeAll(sockets: net.Socket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          socket.end(); // FIN, as a client leaving a tunnel normally would
          setTimeout(() => socket.destroy(), 2000).unref();
        }),
    ),
  );
}

/** Waits until `pid` has at most `fds` descriptors open, up to `limitMs`; returns the time waited. */
async function waitForFds(pid: number, fds: number, limitMs: number): Promise<number> {
  const start = Date.now();
  while (fdCount(pid) > fds && Date.now() - start < limitMs) await sleep(100);
  return Date.now() - start;
}

export async function idleTunnels(proxyPort: number, proxyPid: number, originPort: number, count: number, probeDir?: string): Promise<IdleResult> {
  const probe = () => (probeDir ? probeHeap(proxyPid, probeDir) : Promise.resolve(undefined));
  // Warm-up, so lazily built code and pools are not counted as per-tunnel memory.
  const warm = await openMany(proxyPort, originPort, 200, 50);
  await closeAll(warm.sockets);
  await sleep(300);
  const fdsBefore = fdCount(proxyPid);
  await waitForFds(proxyPid, fdsBefore, 2000);
  const rssBeforeKiB = rssKiB(proxyPid);
  const gcBefore = await probe();

  const start = Date.now();
  const { sockets, failed } = await openMany(proxyPort, originPort, count, 200);
  const establishMs = Date.now() - start;
  await sleep(500);
  const rssOpenKiB = rssKiB(proxyPid);
  const fdsOpen = fdCount(proxyPid);
  const gcOpen = await probe();

  await closeAll(sockets);
  const drainMs = await waitForFds(proxyPid, fdsBefore, 10_000);
  await sleep(500);
  const rssAfterKiB = rssKiB(proxyPid);
  const gcAfter = await probe();
  const perTunnel = (key: keyof HeapProbe) => (gcBefore && gcOpen ? (gcOpen[key] - gcBefore[key]) / 1024 / Math.max(1, sockets.length) : undefined);
  return {
    tunnels: sockets.length,
    failed,
    establishMs,
    rssBeforeKiB,
    rssOpenKiB,
    rssAfterKiB,
    kibPerTunnel: (rssOpenKiB - rssBeforeKiB) / Math.max(1, sockets.length),
    fdsBefore,
    fdsOpen,
    fdsAfter: fdCount(proxyPid),
    drainMs,
    gcBefore,
    gcOpen,
    gcAfter,
    kibPerTunnelAfterGc: perTunnel('rss'),
    heapKibPerTunnel: perTunnel('heapUsed'),
  };
}

/** What one contender measured over the rounds (medians with min–max, and the worst fd count). */
export interface IdleSummary {
  kibPerTunnel: Spread;
  kibPerTunnelAfterGc: Spread;
  heapKibPerTunnel: Spread;
  establishMs: Spread;
  rssBeforeKiB: Spread;
  /** The largest `fdsAfter − fdsBefore` of any round (≤ 0: descriptors came back every time). */
  fdsLeft: number;
  /** The median round's fd counts before, with the tunnels open, and after. */
  fdsBefore: number;
  fdsOpen: number;
  tunnels: number;
  /** Summed over the rounds. */
  failed: number;
}

/** The section's summaries per contender that ran, and the ones skipped with why. */
export interface IdleSection {
  columns: string[];
  results: Record<string, IdleSummary>;
  skipped: Record<string, string>;
}

/**
 * `count` idle tunnels through each contender, `rounds` rounds alternating, a fresh process each
 * (heaps grown by earlier runs would hide the growth). Node contenders started with the heap
 * probe also report RSS and heap per tunnel after a forced GC.
 */
export async function idleSection(
  originPort: number,
  contenders: Contender<Proxy>[],
  options: { rounds: number; count: number; tmp: string },
  log: (text: string) => void,
): Promise<IdleSection> {
  const rounds = await alternate(contenders, options.rounds, async (name, proxy, round) => {
    // Only a probed process gets SIGUSR2 (squid takes it as "debug everything").
    const result = await idleTunnels(proxy.port, proxy.child.pid, originPort, options.count, proxy.probed ? options.tmp : undefined);
    log(`idle round ${round + 1} ${name}: ${result.kibPerTunnel.toFixed(1)} KiB/tunnel, ${result.failed} failed`);
    return result;
  });
  const numbers = (values: (number | undefined)[]) => values.filter((v): v is number => v !== undefined);
  const results: Record<string, IdleSummary> = {};
  for (const name of rounds.columns) {
    const runs = rounds.samples[name]!;
    const middle = [...runs].sort((a, b) => a.kibPerTunnel - b.kibPerTunnel)[runs.length >> 1]!;
    results[name] = {
      kibPerTunnel: spread(runs.map((r) => r.kibPerTunnel)),
      kibPerTunnelAfterGc: spread(numbers(runs.map((r) => r.kibPerTunnelAfterGc))),
      heapKibPerTunnel: spread(numbers(runs.map((r) => r.heapKibPerTunnel))),
      establishMs: spread(runs.map((r) => r.establishMs)),
      rssBeforeKiB: spread(runs.map((r) => r.rssBeforeKiB)),
      fdsLeft: Math.max(...runs.map((r) => r.fdsAfter - r.fdsBefore)),
      fdsBefore: middle.fdsBefore,
      fdsOpen: middle.fdsOpen,
      tunnels: middle.tunnels,
      failed: runs.reduce((sum, r) => sum + r.failed, 0),
    };
  }
  return { columns: rounds.columns, results, skipped: rounds.skipped };
}
