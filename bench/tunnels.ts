// CONNECT tunnels through each contender: throughput each way through one tunnel (64 KiB writes
// as fast as backpressure allows, the receiver only counts) with the proxy's CPU seconds per GB,
// then the rate of new tunnels (opened and closed, `concurrency` at a time, to the idle origin,
// after a warm-up, not counted) with the proxy's CPU per new tunnel.
// Rounds alternate across the contenders, a fresh process each; medians with min–max.
import type { Proxy } from './proxies.js';
import { spread, type Spread } from './report.js';
import { alternate, type Contender } from './rounds.js';
import { transfer, type Transfer } from './throughput.js';
import { measureSetup, openTunnel, type SetupMeasure } from './tunnel.js';

/** What one contender measured, each as median with min–max over the rounds. */
export interface TunnelResult {
  upMbps: Spread;
  downMbps: Spread;
  /** Proxy CPU seconds per GB (10^9 bytes) moved, each direction. */
  upCpuSPerGB: Spread;
  downCpuSPerGB: Spread;
  /** New tunnels opened and closed per second. */
  tunnelsPerSecond: Spread;
  /** Proxy CPU µs per new tunnel. */
  cpuUsPerTunnel: Spread;
  /** Transfers the time limit stopped (their rate is over the bytes moved). */
  partial: number;
}

export interface TunnelsOptions {
  bytes: number;
  timeoutMs: number;
  rounds: number;
  /** Tunnels per setup-rate run and how many at a time. */
  tunnels: number;
  /** Tunnels opened and closed first, not counted (a fresh process's JIT warm-up). */
  warmupTunnels: number;
  concurrency: number;
}

/** The section's results per contender that ran, and the ones skipped with why. */
export interface TunnelsSection {
  columns: string[];
  results: Record<string, TunnelResult>;
  skipped: Record<string, string>;
}

interface Sample {
  up: Transfer;
  down: Transfer;
  setup: SetupMeasure;
}

export async function tunnelsSection(
  ports: { throughput: number; idle: number },
  contenders: Contender<Proxy>[],
  options: TunnelsOptions,
  log: (text: string) => void,
): Promise<TunnelsSection> {
  const rounds = await alternate(contenders, options.rounds, async (name, proxy, round): Promise<Sample> => {
    const pid = proxy.child.pid;
    const up = await transfer(proxy.port, pid, ports.throughput, 'up', options.bytes, options.timeoutMs);
    const down = await transfer(proxy.port, pid, ports.throughput, 'down', options.bytes, options.timeoutMs);
    const setup = await measureSetup(() => openTunnel(proxy.port, ports.idle), pid, options.warmupTunnels, options.tunnels, options.concurrency);
    log(
      `tunnels round ${round + 1} ${name}: ${up.mbps.toFixed(0)} MB/s up, ${down.mbps.toFixed(0)} MB/s down, ${setup.rate.toFixed(0)} new tunnels/s (${setup.cpuUsPerTunnel.toFixed(0)} µs CPU each)`,
    );
    return { up, down, setup };
  });
  const perGB = (t: Transfer) => t.proxyCpuS / (t.bytes / 1e9);
  const results: Record<string, TunnelResult> = {};
  for (const name of rounds.columns) {
    const s = rounds.samples[name]!;
    results[name] = {
      upMbps: spread(s.map((x) => x.up.mbps)),
      downMbps: spread(s.map((x) => x.down.mbps)),
      upCpuSPerGB: spread(s.map((x) => perGB(x.up))),
      downCpuSPerGB: spread(s.map((x) => perGB(x.down))),
      tunnelsPerSecond: spread(s.map((x) => x.setup.rate)),
      cpuUsPerTunnel: spread(s.map((x) => x.setup.cpuUsPerTunnel)),
      partial: s.filter((x) => !x.up.complete || !x.down.complete).length,
    };
  }
  return { columns: rounds.columns, results, skipped: rounds.skipped };
}
