// Section 6: one proxyline chain reached three ways — plain CONNECT, the SOCKS5 listener, and
// CONNECT over the HTTPS (TLS) listener — side by side in the same run. Each round starts fresh
// processes (one serving HTTP and SOCKS5, one serving HTTPS) and measures every way in; the
// report gives medians with min–max over the rounds.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, stopChild, type Child } from './procs.js';
import { CLI, CLI_NODE_FLAGS } from './proxies.js';
import { spread, type Spread } from './report.js';
import { transferThrough, type Transfer } from './throughput.js';
import { measureSetup, openSocksTunnel, openTlsTunnel, openTunnel, type SetupMeasure, type Tunnel } from './tunnel.js';

const DIST = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ROOT = path.dirname(DIST);
const CERT = path.join(ROOT, 'test/fixtures/localhost-cert.pem');
const KEY = path.join(ROOT, 'test/fixtures/localhost-key.pem');

/** The ways into the proxy this section compares, in column order. */
export const WAYS_IN = ['CONNECT', 'SOCKS5', 'CONNECT over TLS'] as const;
/** One way into the proxy. */
export type WayIn = (typeof WAYS_IN)[number];

/** What one way in measured, each as median with min–max over the rounds. */
export interface WayInResult {
  upMbps: Spread;
  downMbps: Spread;
  /** Proxy CPU seconds per GB (10^9 bytes) moved, each direction. */
  upCpuSPerGB: Spread;
  downCpuSPerGB: Spread;
  /** New tunnels opened and closed per second (`concurrency` at a time). */
  tunnelsPerSecond: Spread;
  /** Proxy CPU µs per new tunnel. */
  cpuUsPerTunnel: Spread;
}

export interface ListenersOptions {
  bytes: number;
  timeoutMs: number;
  rounds: number;
  /** Tunnels opened per setup-rate run and how many at a time. */
  tunnels: number;
  /** Tunnels opened and closed first, not counted (a fresh process's JIT warm-up). */
  warmupTunnels: number;
  concurrency: number;
  /** plugins.json the proxies run (the bench's default chain without logger). */
  config: string;
  tmp: string;
}

const LISTENING = /^proxyline listening on (https?):\/\/127\.0\.0\.1:(\d+)$/m;
const SOCKS = /^proxyline socks5 on socks5:\/\/127\.0\.0\.1:(\d+)$/m;

function start(name: string, args: string[], ready: RegExp, options: ListenersOptions): Promise<Child> {
  const common = ['--host', '127.0.0.1', '--port', '0', '--config', options.config, '--grace-period', '0'];
  return startChild(name, process.execPath, [...CLI_NODE_FLAGS, CLI, ...common, ...args], ready, path.join(options.tmp, `${name}.stderr.log`));
}

/** Runs the section; resolves with a result per way in, or throws why it cannot run (a listener missing). */
export async function listenersSection(
  ports: { throughput: number; idle: number },
  options: ListenersOptions,
  log: (text: string) => void,
): Promise<Record<WayIn, WayInResult>> {
  const ca = readFileSync(CERT);
  const samples = Object.fromEntries(WAYS_IN.map((way) => [way, { up: [] as Transfer[], down: [] as Transfer[], setups: [] as SetupMeasure[] }])) as Record<
    WayIn,
    { up: Transfer[]; down: Transfer[]; setups: SetupMeasure[] }
  >;
  for (let round = 0; round < options.rounds; round++) {
    const plain = await start('proxyline-socks', ['--socks-port', '0'], SOCKS, options);
    const secure = await start('proxyline-tls', ['--tls-cert', CERT, '--tls-key', KEY], LISTENING, options).catch(async (error: unknown) => {
      await stopChild(plain);
      throw error;
    });
    try {
      const httpPort = Number(LISTENING.exec(plain.output)![2]);
      const socksPort = Number(SOCKS.exec(plain.output)![1]);
      const tlsPort = Number(LISTENING.exec(secure.output)![2]);
      const ways: Record<WayIn, { pid: number; open: (target: number) => Promise<Tunnel> }> = {
        CONNECT: { pid: plain.pid, open: (target) => openTunnel(httpPort, target) },
        SOCKS5: { pid: plain.pid, open: (target) => openSocksTunnel(socksPort, target) },
        'CONNECT over TLS': { pid: secure.pid, open: (target) => openTlsTunnel(tlsPort, target, ca) },
      };
      for (const way of WAYS_IN) {
        const { pid, open } = ways[way];
        for (const direction of ['up', 'down'] as const) {
          const result = await transferThrough(open(ports.throughput), pid, direction, options.bytes, options.timeoutMs);
          samples[way][direction].push(result);
          log(`listeners round ${round + 1} ${way} ${direction}: ${result.mbps.toFixed(0)} MB/s`);
        }
        const setup = await measureSetup(() => open(ports.idle), pid, options.warmupTunnels, options.tunnels, options.concurrency);
        samples[way].setups.push(setup);
        log(`listeners round ${round + 1} ${way}: ${setup.rate.toFixed(0)} new tunnels/s (${setup.cpuUsPerTunnel.toFixed(0)} µs CPU each)`);
      }
    } finally {
      await stopChild(plain);
      await stopChild(secure);
    }
  }
  const perGB = (t: Transfer) => t.proxyCpuS / (t.bytes / 1e9);
  return Object.fromEntries(
    WAYS_IN.map((way) => {
      const s = samples[way];
      const result: WayInResult = {
        upMbps: spread(s.up.map((t) => t.mbps)),
        downMbps: spread(s.down.map((t) => t.mbps)),
        upCpuSPerGB: spread(s.up.map(perGB)),
        downCpuSPerGB: spread(s.down.map(perGB)),
        tunnelsPerSecond: spread(s.setups.map((x) => x.rate)),
        cpuUsPerTunnel: spread(s.setups.map((x) => x.cpuUsPerTunnel)),
      };
      return [way, result];
    }),
  ) as Record<WayIn, WayInResult>;
}
