// `npm run bench`: proxyline as shipped (logger on, its records to a file), proxyline without the
// logger, the minimal Node splice, squid and the `proxy` npm package, each a child process on
// 127.0.0.1, against nginx and node:http origins. Every section runs rounds alternating across
// the proxies, a fresh process per round, and reports medians with min–max. Prints a table per
// section, the targets with PASS/FAIL, and one JSON line at the end.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KEEPALIVE_GENERATOR, WRK_MISSING } from './http-load.js';
import { nginxBinary, nodeOrigin, startNginx, type HttpOrigin } from './http-origins.js';
import { idleSection, type IdleSection } from './idle.js';
import { keepAliveSection, type KeepAliveSummary } from './keepalive.js';
import { listenersSection, WAYS_IN, type WayInResult } from './listeners.js';
import { productionSection, type ChainSummary } from './production.js';
import { killAll, startChild, stopChild } from './procs.js';
import { contenders, noLoggerConfig, squidBinary } from './proxies.js';
import { showSpread, table, targets, type Spread, type Target } from './report.js';
import { tunnelsSection, type TunnelResult } from './tunnels.js';

/** BENCH_QUICK=1: one round of short runs, a smoke test of the whole bench (figures not to be compared). */
const QUICK = process.env.BENCH_QUICK === '1';
const env = (name: string, full: number, quick = full) => Number(process.env[name] ?? (QUICK ? quick : full));
const ROUNDS = env('BENCH_ROUNDS', 4, 1);
const CONFIG = {
  quick: QUICK,
  /** Sections 1–3: rounds per proxy, alternating, a fresh process each; medians are reported. */
  rounds: ROUNDS,
  keepAliveRounds: env('BENCH_KEEPALIVE_ROUNDS', ROUNDS),
  keepAliveConcurrency: env('BENCH_KEEPALIVE_CONCURRENCY', 50),
  keepAliveSeconds: env('BENCH_KEEPALIVE_SECONDS', 5, 2),
  keepAliveWarmupSeconds: env('BENCH_KEEPALIVE_WARMUP_SECONDS', 1),
  /** Two more than BENCH_ROUNDS by default: one tunnel's MB/s varies by ±20 % between rounds on a shared machine, more than the proxies differ. */
  tunnelRounds: env('BENCH_TUNNEL_ROUNDS', ROUNDS + 2, ROUNDS),
  tunnelBytes: env('BENCH_TUNNEL_BYTES', 512 * 1024 ** 2, 64 * 1024 ** 2),
  tunnelTimeoutMs: env('BENCH_TUNNEL_TIMEOUT_MS', 20_000),
  /** New tunnels per setup-rate run, and how many at a time (also section 5's). */
  newTunnels: env('BENCH_NEW_TUNNELS', 2000, 300),
  /** New tunnels opened and closed first, not counted: a fresh Node process compiles its per-connection path over the first few thousand. */
  newTunnelsWarmup: env('BENCH_NEW_TUNNELS_WARMUP', 4000, 300),
  tunnelConcurrency: env('BENCH_TUNNEL_CONCURRENCY', 50),
  idleRounds: env('BENCH_IDLE_ROUNDS', ROUNDS),
  idleTunnels: env('BENCH_IDLE_TUNNELS', 5000, 500),
  /** Section 4: rounds per chain, taking turns. */
  productionRounds: env('BENCH_PRODUCTION_ROUNDS', 5, 1),
  /** Section 5: rounds (fresh processes each), bytes per transfer, and tunnels per setup-rate run. */
  listenerRounds: env('BENCH_LISTENER_ROUNDS', 3, 1),
  listenerBytes: env('BENCH_LISTENER_BYTES', 256 * 1024 ** 2, 32 * 1024 ** 2),
  listenerTunnels: env('BENCH_LISTENER_TUNNELS', 2000, 300),
  /** The whole run is stopped after this long, whatever it is doing. */
  watchdogMs: env('BENCH_WATCHDOG_MS', 1_500_000, 300_000),
};

const say = (text: string) => process.stdout.write(`${text}\n`);
const log = (text: string) => process.stderr.write(`bench: ${text}\n`);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'proxyline-bench-'));
/** Kills every child and removes the temp dir; runs at any exit. */
function cleanUp(): void {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
}

const PL = 'proxyline';
const NO_LOGGER = 'no-logger';
const SPLICE = 'splice';
const SQUID = 'squid';
const PACKAGE = 'proxy-package';

/** A loud note when the Node generator stands in for wrk: its figures are not comparable with wrk's. */
function wrkNote(): string | undefined {
  if (!WRK_MISSING) return undefined;
  return `\n!!! NOTE: keep-alive load from the Node generator (${WRK_MISSING}), not wrk: it is slower than wrk and shares the CPUs differently; do not compare these figures with wrk runs !!!\n`;
}

async function bench(): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  say(
    `proxyline bench — node ${process.version}, ${os.cpus().length} CPUs, loopback 127.0.0.1 only${QUICK ? ' — QUICK MODE (1 round, short runs: a smoke test, not figures)' : ''}`,
  );
  say(`config: ${JSON.stringify(CONFIG)}`);
  const note = wrkNote();
  if (note) say(note);

  const origin = await startChild('origin', process.execPath, [path.join(here, 'origin.js')], /^origins listening /, path.join(tmp, 'origin.stderr.log'));
  const ports = JSON.parse(origin.ready.replace(/^origins listening /, '')) as { throughput: number; idle: number; keepAlive: number; count: number };
  const origins: HttpOrigin[] = [];
  const nginx = nginxBinary();
  if (nginx) origins.push(await startNginx(tmp, nginx));
  else say('nginx: not installed (apt-get install -y nginx-light): the keep-alive runs use the node:http origin only');
  origins.push(nodeOrigin(ports.keepAlive, ports.count));
  const main = origins[0]!;
  if (!squidBinary()) say('squid: not installed (apt-get install -y squid): skipped everywhere');

  // 1. Keep-alive HTTP through every proxy, to every origin.
  const ka = await keepAliveSection(
    origins,
    contenders(tmp, [PL, NO_LOGGER, '--workers 2', SPLICE, SQUID, PACKAGE]),
    {
      concurrency: CONFIG.keepAliveConcurrency,
      seconds: CONFIG.keepAliveSeconds,
      warmupSeconds: CONFIG.keepAliveWarmupSeconds,
      rounds: CONFIG.keepAliveRounds,
      tmp,
    },
    log,
  );

  // 2. CONNECT tunnels: throughput both ways, CPU per GB, new tunnels per second.
  const tunnels = await tunnelsSection(
    ports,
    contenders(tmp, [PL, NO_LOGGER, SPLICE, SQUID, PACKAGE]),
    {
      bytes: CONFIG.tunnelBytes,
      timeoutMs: CONFIG.tunnelTimeoutMs,
      rounds: CONFIG.tunnelRounds,
      tunnels: CONFIG.newTunnels,
      warmupTunnels: CONFIG.newTunnelsWarmup,
      concurrency: CONFIG.tunnelConcurrency,
    },
    log,
  );

  // 3. Idle tunnels: memory and descriptors per tunnel, with the heap probe in the Node proxies.
  const idle = await idleSection(
    ports.idle,
    contenders(tmp, [PL, NO_LOGGER, SPLICE, PACKAGE, SQUID], true),
    { rounds: CONFIG.idleRounds, count: CONFIG.idleTunnels, tmp },
    log,
  );

  // 4. What the production chain costs against the default chain (no logger).
  let production: Awaited<ReturnType<typeof productionSection>> | undefined;
  let productionSkipped: string | undefined;
  try {
    production = await productionSection(
      ports,
      main,
      {
        bytes: CONFIG.tunnelBytes,
        timeoutMs: CONFIG.tunnelTimeoutMs,
        seconds: CONFIG.keepAliveSeconds,
        warmupSeconds: CONFIG.keepAliveWarmupSeconds,
        concurrency: CONFIG.keepAliveConcurrency,
        rounds: CONFIG.productionRounds,
        tmp,
      },
      log,
    );
  } catch (error) {
    productionSkipped = (error as Error).message;
  }

  // 5. The same tunnel through each way in: plain CONNECT, the SOCKS5 listener, the HTTPS listener.
  let listeners: Awaited<ReturnType<typeof listenersSection>> | undefined;
  let listenersSkipped: string | undefined;
  try {
    listeners = await listenersSection(
      ports,
      {
        bytes: CONFIG.listenerBytes,
        timeoutMs: CONFIG.tunnelTimeoutMs,
        rounds: CONFIG.listenerRounds,
        tunnels: CONFIG.listenerTunnels,
        warmupTunnels: CONFIG.newTunnelsWarmup,
        concurrency: CONFIG.tunnelConcurrency,
        config: noLoggerConfig(tmp),
        tmp,
      },
      log,
    );
  } catch (error) {
    listenersSkipped = (error as Error).message;
  }
  for (const o of origins) if (o.child) await stopChild(o.child);
  await stopChild(origin);

  const medians = <T>(data: Record<string, T>, pick: (value: T) => Spread) =>
    Object.fromEntries(Object.entries(data).map(([name, value]) => [name, pick(value).median]));
  const skippedLines = (section: string, skipped: Record<string, string>) => {
    for (const [name, why] of Object.entries(skipped)) say(`${section}: ${name} skipped: ${why}`);
  };

  // Section 1's tables, one per origin (the first is the main one).
  say(
    `\nColumns: proxyline = the repository's plugins.json as shipped (logger on, its records to a file); no-logger = the same without logger; --workers 2 = no-logger under a cluster primary with two workers; splice = bench/baseline.ts (~30 lines of net + pipe); squid; proxy-package = the \`proxy\` npm package; direct = no proxy.`,
  );
  skippedLines('1. keep-alive', ka.skipped);
  origins.forEach((o, i) => {
    const s = ka.summary[o.name]!;
    const pick = (f: (k: KeepAliveSummary) => Spread) => medians(s, f);
    say(
      table(
        `1${i ? 'b' : ''}. Keep-alive HTTP through the ${o.name}${i ? '' : ' (main table)'}: ${CONFIG.keepAliveConcurrency} clients, each on one kept-alive connection, ${CONFIG.keepAliveSeconds} s after ${CONFIG.keepAliveWarmupSeconds} s warm-up, 1 KiB body; medians of ${CONFIG.keepAliveRounds} rounds, a fresh process each; generator: ${KEEPALIVE_GENERATOR}`,
        ka.columns,
        [
          { label: 'requests/s (2xx)', values: pick((k) => k.rps), over: [SPLICE, SQUID], ratio: true },
          { label: 'best round requests/s', values: Object.fromEntries(Object.entries(s).map(([n, k]) => [n, k.bestRps])) },
          { label: 'proxy CPU µs per request', values: pick((k) => k.cpuUsPerRequest), over: [SPLICE], ratio: true },
          { label: 'latency p50 ms', values: pick((k) => k.p50Ms), digits: 2, over: [SPLICE] },
          { label: 'latency p99 ms', values: pick((k) => k.p99Ms), digits: 2, over: [SPLICE] },
          { label: 'origin conns per 1,000 requests', values: pick((k) => k.connectionsPer1000), digits: 1 },
          { label: 'non-2xx responses (all rounds)', values: Object.fromEntries(Object.entries(s).map(([n, k]) => [n, k.non2xx])) },
          { label: 'socket errors (all rounds)', values: Object.fromEntries(Object.entries(s).map(([n, k]) => [n, k.errors])) },
        ],
        [['--workers 2', NO_LOGGER]],
      ),
    );
    for (const name of ka.columns) {
      const k = s[name]!;
      say(`  ${name}: requests/s ${showSpread(k.rps)}, p99 ms ${showSpread(k.p99Ms, 2)}, CPU µs/request ${showSpread(k.cpuUsPerRequest)} (median (min–max))`);
    }
  });

  skippedLines('2. tunnels', tunnels.skipped);
  const t = tunnels.results;
  say(
    table(
      `2. CONNECT tunnels: ${(CONFIG.tunnelBytes / 1024 ** 2).toFixed(0)} MiB each way through one tunnel, 64 KiB writes (MB/s = 10^6 bytes/s; CPU: the proxy process, per 10^9 bytes); new tunnels: ${CONFIG.newTunnels} opened and closed, ${CONFIG.tunnelConcurrency} at a time, after ${CONFIG.newTunnelsWarmup} not counted (warm-up); medians of ${CONFIG.tunnelRounds} rounds, a fresh process each`,
      tunnels.columns,
      [
        { label: 'client→origin MB/s', values: medians(t, (r: TunnelResult) => r.upMbps), over: [SPLICE, PACKAGE] },
        { label: 'origin→client MB/s', values: medians(t, (r) => r.downMbps), over: [SPLICE, PACKAGE] },
        { label: 'CPU s per GB, client→origin', values: medians(t, (r) => r.upCpuSPerGB), digits: 2, over: [SPLICE, PACKAGE] },
        { label: 'CPU s per GB, origin→client', values: medians(t, (r) => r.downCpuSPerGB), digits: 2, over: [SPLICE, PACKAGE] },
        { label: 'new tunnels/s', values: medians(t, (r) => r.tunnelsPerSecond), over: [SPLICE, SQUID] },
        { label: 'proxy CPU µs per new tunnel', values: medians(t, (r) => r.cpuUsPerTunnel), over: [SPLICE, SQUID] },
      ],
    ),
  );
  for (const name of tunnels.columns) {
    const r = t[name]!;
    say(
      `  ${name}: client→origin ${showSpread(r.upMbps)} MB/s, origin→client ${showSpread(r.downMbps)} MB/s, new tunnels/s ${showSpread(r.tunnelsPerSecond)} (CPU µs each ${showSpread(r.cpuUsPerTunnel)})${r.partial ? `, ${r.partial} transfer(s) stopped by the ${CONFIG.tunnelTimeoutMs} ms limit` : ''}`,
    );
  }

  skippedLines('3. idle', idle.skipped);
  const i = idle.results;
  const spliceKib = i[SPLICE]?.kibPerTunnel.median;
  say(
    table(
      `3. ${CONFIG.idleTunnels} idle CONNECT tunnels (proxy process; after a 200-tunnel warm-up; forced-GC rows for the Node proxies); medians of ${CONFIG.idleRounds} rounds, a fresh process each`,
      idle.columns,
      [
        { label: 'KiB RSS per tunnel', values: medians(i, (r) => r.kibPerTunnel), digits: 1 },
        {
          label: 'KiB RSS per tunnel over splice',
          values: Object.fromEntries(Object.entries(i).map(([n, r]) => [n, spliceKib === undefined ? undefined : r.kibPerTunnel.median - spliceKib])),
          digits: 1,
        },
        { label: 'KiB RSS per tunnel, forced GC', values: medians(i, (r) => r.kibPerTunnelAfterGc), digits: 1 },
        { label: 'KiB JS heap per tunnel, forced GC', values: medians(i, (r) => r.heapKibPerTunnel), digits: 1 },
        { label: 'RSS KiB before', values: medians(i, (r) => r.rssBeforeKiB) },
        { label: 'fds before', values: Object.fromEntries(Object.entries(i).map(([n, r]) => [n, r.fdsBefore])) },
        { label: 'fds, tunnels open', values: Object.fromEntries(Object.entries(i).map(([n, r]) => [n, r.fdsOpen])) },
        { label: 'fds left after close (worst round)', values: Object.fromEntries(Object.entries(i).map(([n, r]) => [n, r.fdsLeft])) },
        { label: 'ms to open all', values: medians(i, (r) => r.establishMs) },
        { label: 'tunnels failed (all rounds)', values: Object.fromEntries(Object.entries(i).map(([n, r]) => [n, r.failed])) },
      ],
    ),
  );
  for (const name of idle.columns) say(`  ${name}: KiB RSS per tunnel ${showSpread(i[name]!.kibPerTunnel, 1)}`);

  if (production) {
    const cols = ['default chain', 'production chain'];
    const pick = (f: (r: ChainSummary) => Spread) => ({ 'default chain': f(production.default).median, 'production chain': f(production.production).median });
    say(
      table(
        `4. Production chain (proxy-auth, destination-policy, rate-limit, access-log, metrics) against the default chain (no logger), keep-alive through the ${main.name} then a ${(CONFIG.tunnelBytes / 1024 ** 2).toFixed(0)} MiB tunnel each way; medians of ${CONFIG.productionRounds} rounds taking turns, a fresh process each`,
        cols,
        [
          { label: 'keep-alive requests/s (2xx)', values: pick((r) => r.rps), ratio: true },
          { label: 'keep-alive p50 ms', values: pick((r) => r.p50Ms), digits: 2, ratio: true },
          { label: 'keep-alive p99 ms', values: pick((r) => r.p99Ms), digits: 2, ratio: true },
          { label: 'proxy CPU µs per request', values: pick((r) => r.cpuUsPerRequest), ratio: true },
          { label: 'tunnel client→origin MB/s', values: pick((r) => r.upMbps), ratio: true },
          { label: 'tunnel origin→client MB/s', values: pick((r) => r.downMbps), ratio: true },
          { label: 'non-2xx responses (all rounds)', values: { 'default chain': production.default.non2xx, 'production chain': production.production.non2xx } },
        ],
        [['production chain', 'default chain']],
      ),
    );
    const list = (values: number[]) => values.map((rps) => Math.round(rps)).join(', ');
    say(`  keep-alive requests/s per round: default chain ${list(production.rounds.default)}; production chain ${list(production.rounds.production)}`);
  } else {
    say(`\n4. Production chain: skipped: ${productionSkipped}`);
  }

  if (listeners) {
    const ways = [...WAYS_IN];
    const mib = (CONFIG.listenerBytes / 1024 ** 2).toFixed(0);
    const median = (pick: (r: WayInResult) => { median: number }) => Object.fromEntries(ways.map((way) => [way, pick(listeners[way]).median]));
    say(
      table(
        `5. Ways in: one tunnel through plain CONNECT, the SOCKS5 listener and CONNECT over the HTTPS listener (same chain, no logger), ${mib} MiB each way, medians of ${CONFIG.listenerRounds} rounds, fresh processes each round`,
        ways,
        [
          { label: 'client→origin MB/s', values: median((r) => r.upMbps), ratio: true },
          { label: 'origin→client MB/s', values: median((r) => r.downMbps), ratio: true },
          { label: 'proxy CPU s per GB, client→origin', values: median((r) => r.upCpuSPerGB), digits: 2, ratio: true },
          { label: 'proxy CPU s per GB, origin→client', values: median((r) => r.downCpuSPerGB), digits: 2, ratio: true },
          {
            label: `new tunnels/s (${CONFIG.listenerTunnels}, ${CONFIG.tunnelConcurrency} at a time, after a warm-up)`,
            values: median((r) => r.tunnelsPerSecond),
            ratio: true,
          },
          { label: 'proxy CPU µs per new tunnel', values: median((r) => r.cpuUsPerTunnel), ratio: true },
        ],
        [
          ['SOCKS5', 'CONNECT'],
          ['CONNECT over TLS', 'CONNECT'],
        ],
      ),
    );
    for (const way of ways) {
      const r = listeners[way];
      say(
        `  ${way}: client→origin ${showSpread(r.upMbps)} MB/s, origin→client ${showSpread(r.downMbps)} MB/s, new tunnels/s ${showSpread(r.tunnelsPerSecond)}, CPU µs per new tunnel ${showSpread(r.cpuUsPerTunnel)} (median (min–max))`,
      );
    }
  } else {
    say(`\n5. Ways in: skipped: ${listenersSkipped}`);
  }

  const goals = targetList(ka.summary[main.name]!, ka.skipped, main, tunnels.results, tunnels.skipped, idle, production, productionSkipped);
  if (note) say(note);
  say(targets(goals));
  say(
    JSON.stringify({
      config: CONFIG,
      keepAliveGenerator: KEEPALIVE_GENERATOR,
      keepAlive: { origins: origins.map((o) => o.name), columns: ka.columns, skipped: ka.skipped, summary: ka.summary, runs: ka.runs },
      tunnels,
      idle,
      production: production ?? { skipped: productionSkipped },
      listeners: listeners ?? { skipped: listenersSkipped },
      targets: goals,
    }),
  );
}

/** The issue's targets, on medians, PASS/FAIL; what it does not list is printed as info. */
function targetList(
  k: Record<string, KeepAliveSummary>,
  kaSkipped: Record<string, string>,
  main: HttpOrigin,
  t: Record<string, TunnelResult>,
  tSkipped: Record<string, string>,
  idle: IdleSection,
  production: Awaited<ReturnType<typeof productionSection>> | undefined,
  productionSkipped: string | undefined,
): Target[] {
  const goals: Target[] = [];
  const missing = (skipped: Record<string, string>, ...names: string[]) =>
    `not measured (${
      names
        .filter((n) => skipped[n] !== undefined)
        .map((n) => `${n}: ${skipped[n]}`)
        .join('; ') || 'no figure'
    })`;
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  for (const chain of [PL, NO_LOGGER]) {
    const label = chain === PL ? 'proxyline (as shipped, logger to a file)' : 'proxyline without logger';
    const rps = k[chain]?.rps.median;
    for (const [other, factor] of [
      [SQUID, 1.5],
      [SPLICE, 0.75],
    ] as const) {
      const name = `${label}: kept-alive requests/s (${main.name}) ≥ ${factor}× ${other}`;
      const ref = k[other]?.rps.median;
      if (rps === undefined || ref === undefined) goals.push({ name, measured: missing(kaSkipped, chain, other), pass: false });
      else goals.push({ name, measured: `${x(rps, ref)} (${rps.toFixed(0)} vs ${ref.toFixed(0)} req/s)`, pass: rps >= factor * ref });
    }
    const name = `${label}: p99 under that load ≤ 2× the splice's`;
    const p99 = k[chain]?.p99Ms.median;
    const ref = k[SPLICE]?.p99Ms.median;
    if (p99 === undefined || ref === undefined || Number.isNaN(p99) || Number.isNaN(ref))
      goals.push({ name, measured: missing(kaSkipped, chain, SPLICE), pass: false });
    else goals.push({ name, measured: `${p99.toFixed(2)} vs ${ref.toFixed(2)} ms (${x(p99, ref)})`, pass: p99 <= 2 * ref });
  }
  const tunnelGoal = (name: string, pick: (r: TunnelResult) => Spread, better: 'higher' | 'lower', other: string, unit: string, digits = 0) => {
    const a = t[PL] && pick(t[PL]).median;
    const b = t[other] && pick(t[other]).median;
    if (a === undefined || b === undefined) return goals.push({ name, measured: missing(tSkipped, PL, other), pass: false });
    const pass = better === 'higher' ? a >= b : a <= b;
    return goals.push({ name, measured: `${a.toFixed(digits)} vs ${b.toFixed(digits)} ${unit} (${x(a, b)})`, pass });
  };
  tunnelGoal('tunnel client→origin MB/s ≥ the proxy package’s', (r) => r.upMbps, 'higher', PACKAGE, 'MB/s');
  tunnelGoal('tunnel origin→client MB/s ≥ the proxy package’s', (r) => r.downMbps, 'higher', PACKAGE, 'MB/s');
  tunnelGoal('tunnel CPU s per GB client→origin ≤ the proxy package’s', (r) => r.upCpuSPerGB, 'lower', PACKAGE, 's/GB', 2);
  tunnelGoal('tunnel CPU s per GB origin→client ≤ the proxy package’s', (r) => r.downCpuSPerGB, 'lower', PACKAGE, 's/GB', 2);
  tunnelGoal('new tunnels/s ≥ squid’s', (r) => r.tunnelsPerSecond, 'higher', SQUID, 'tunnels/s');
  {
    const name = 'idle memory per tunnel ≤ splice + 2 KiB';
    const kib = idle.results[PL]?.kibPerTunnel.median;
    const base = idle.results[SPLICE]?.kibPerTunnel.median;
    if (kib === undefined || base === undefined) goals.push({ name, measured: missing(idle.skipped, PL, SPLICE), pass: false });
    else goals.push({ name, measured: `${kib.toFixed(1)} KiB vs ${base.toFixed(1)} + 2 KiB`, pass: kib <= base + 2 });
  }
  if (production) {
    const cost = 1 - production.production.rps.median / production.default.rps.median;
    goals.push({
      name: 'the production chain costs < 15 % of kept-alive requests/s',
      measured: `${(cost * 100).toFixed(1)} % (${production.production.rps.median.toFixed(0)} vs ${production.default.rps.median.toFixed(0)} req/s)`,
      pass: cost < 0.15 && production.production.non2xx === 0,
    });
  } else goals.push({ name: 'the production chain costs < 15 % of kept-alive requests/s', measured: `not measured (${productionSkipped})`, pass: false });
  const fds = idle.results[PL]?.fdsLeft;
  goals.push({
    name: 'proxyline: descriptors back to the start after idle tunnels close (every round)',
    measured: fds === undefined ? 'not measured' : `${fds} left at worst`,
  });
  const conns = k[PL]?.connectionsPer1000.median;
  goals.push({
    name: `proxyline: origin connections per 1,000 kept-alive requests (${main.name})`,
    measured: conns === undefined || Number.isNaN(conns) ? 'not measured' : conns.toFixed(1),
  });
  return goals;
}

const watchdog = setTimeout(() => {
  log(`watchdog: still running after ${CONFIG.watchdogMs} ms, stopping`);
  process.exit(1);
}, CONFIG.watchdogMs);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.exit(130);
  });
}
process.on('exit', cleanUp);

bench().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`failed: ${(error as Error).stack ?? String(error)}`);
    // The children's stderr is in the temp dir, which goes away at exit: show its end first.
    for (const file of readdirSync(tmp).filter((name) => name.endsWith('.log'))) {
      const lines = readFileSync(path.join(tmp, file), 'utf8').trimEnd().split('\n').slice(-10).join('\n');
      if (lines) log(`${file}, last lines:\n${lines}`);
    }
    process.exit(1);
  },
);
