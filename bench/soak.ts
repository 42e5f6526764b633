// `npm run soak`: a bounded soak test on loopback. The proxy CLI runs as a child process with
// PROXY_PLUGINS below; the origins (soak-origins.ts) and the clients run in this process: a mix
// of well-behaved clients (soak-clients.ts: every request checked, any failure counts) and
// faulty or idle ones (soak-faulty.ts: counted by how they ended) for SOAK_SECONDS. The proxy's
// open fds and RSS are read from /proc after a warm-up and a quiet period, every few seconds
// under load, and after a final quiet period. Prints the figures, then PASS/FAIL against: no
// unexpected failure, fds back within +10 of the start, RSS growth under 50 MB. Exit code 1 on FAIL.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMs, fdCount, killAll, rssKiB, startChild, stopChild, type Child } from './procs.js';
import { targets, type Target } from './report.js';
import { runWellBehaved, type WellBehavedMix } from './soak-clients.js';
import { runFaulty, type FaultyMix } from './soak-faulty.js';
import { loadTls, startOrigins, type Origins } from './soak-origins.js';
import { closeAll, openSockets, sleep, Tally, type ClientContext } from './soak-shared.js';

// ─────────────────────────────────────────────────────────────────────────────────────────────
// THE PROXY'S CONFIGURATION UNDER SOAK (its plugins.json). The repository's default chain without
// the logger, with short timeouts so stalled clients (heads, bodies, responses, idle tunnels) are
// released during the run.
// ─────────────────────────────────────────────────────────────────────────────────────────────
const PROXY_PLUGINS = [
  {
    name: 'head-parser',
    options: {
      maxHeaderBytes: 65536,
      headersTimeoutMs: 2000,
      keepAliveTimeoutMs: 3000,
      bodyTimeoutMs: 2000,
      minBodyBytesPerSecond: 1024,
    },
  },
  { name: 'connect-handler' },
  { name: 'http-forward', options: { via: 'proxyline' } },
  {
    name: 'upstream-dialer',
    options: {
      connectTimeoutMs: 2000,
      idleTimeoutMs: 2000,
      responseTimeoutMs: 5000,
      responseIdleTimeoutMs: 5000,
      tunnelIdleTimeoutMs: 10000,
    },
  },
  { name: 'byte-counter' },
];

/** The longest `…TimeoutMs` in PROXY_PLUGINS: the proxy should have released everything by then. */
const LONGEST_TIMEOUT_MS = Math.max(
  ...PROXY_PLUGINS.flatMap((plugin) => Object.entries((plugin as { options?: Record<string, number> }).options ?? {}))
    .filter(([name]) => name.endsWith('TimeoutMs'))
    .map(([, ms]) => ms),
);

/** A number from the environment; anything but a finite number ≥ `min` stops the soak before it starts. */
function env(name: string, fallback: number, min = 0): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) {
    process.stderr.write(`soak: ${name}: expected a number ≥ ${min}, found "${text}"\n`);
    process.exit(2);
  }
  return value;
}
const CONFIG = {
  seconds: env('SOAK_SECONDS', 600),
  warmupSeconds: env('SOAK_WARMUP_SECONDS', 5),
  /** After the load stops: how long before the end reading (and how long a stalled client waits for the proxy). */
  quietMs: env('SOAK_QUIET_MS', LONGEST_TIMEOUT_MS + 3000),
  sampleSeconds: env('SOAK_SAMPLE_SECONDS', 5, 1),
};

/** Loops per well-behaved kind (each holds at most one client connection at a time). */
const WELL_BEHAVED: WellBehavedMix = { 'http-get': 10, 'http-post': 6, 'tunnel-echo': 4, https: 4 };
/** Loops per faulty or idle kind. */
const FAULTY: FaultyMix = {
  'reset-mid-head': 1,
  'reset-mid-body': 1,
  garbage: 1,
  'slow-reader': 2,
  'stalled-body': 2,
  'close-pending': 2,
  'stalled-head': 1,
  'idle-keepalive': 1,
  'idle-tunnel': 1,
};

/** Pass limits. */
const MAX_FD_GROWTH = 10;
const MAX_RSS_GROWTH_MB = 50;
/** After the load stops, the clients still busy get this long to end on their own; then they are closed. */
const WIND_DOWN_MS = Math.max(CONFIG.quietMs, 15_000) + 5_000;
/** At least this long between the last client closing and the end reading. */
const MIN_SETTLE_MS = 2000;

const say = (text: string) => process.stdout.write(`${text}\n`);
const log = (text: string) => process.stderr.write(`soak: ${text}\n`);
const mb = (kib: number) => (kib * 1024) / 1e6;
const sum = (map: Map<string, number>) => [...map.values()].reduce((a, b) => a + b, 0);

const ROOT = path.dirname(path.dirname(path.dirname(fileURLToPath(import.meta.url)))); // dist/bench/soak.js → repository
const tmp = mkdtempSync(path.join(os.tmpdir(), 'proxyline-soak-'));

/** Set by the first Ctrl-C: the load stops, the report is printed, and the exit code says so. */
let interrupted = false;
/** Set if the proxy exits during the run. */
let proxyExit: string | undefined;

/** One reading of the proxy's /proc. */
interface Sample {
  /** Seconds since the start reading. */
  atS: number;
  fds: number;
  rssKiB: number;
}

/** What the report is made of, besides the tally. */
interface Figures {
  loadSeconds: number;
  /** From the moment the load stopped to the end reading. */
  quietSeconds: number;
  /** Well-behaved requests done during the load phase (the tally also holds the warm-up's). */
  loadRequests: number;
  /** Proxy CPU seconds (user + system) from the start reading to the end reading. */
  cpuS: number;
  samples: Sample[];
  start?: Sample;
  end?: Sample;
  /** Connections the origins still had open at the end reading (upstream sockets the proxy kept). */
  openAtOrigins: number;
  /** Client sockets still open at the end reading (0 unless the soak itself leaks). */
  openAtClients: number;
}

/** Starts the origins and the proxy, runs the warm-up and the load, prints the report; true on PASS. */
async function soak(): Promise<boolean> {
  const tls = loadTls(ROOT);
  const config = path.join(tmp, 'plugins.json');
  writeFileSync(config, JSON.stringify({ plugins: PROXY_PLUGINS }, null, 2));
  const origins = await startOrigins(tls);
  let proxy: Child | undefined;
  try {
    proxy = await startChild(
      'proxyline',
      process.execPath,
      [path.join(ROOT, 'dist/src/cli.js'), '--host', '127.0.0.1', '--port', '0', '--config', config, '--grace-period', '0'],
      /^proxyline listening on http:\/\/127\.0\.0\.1:\d+$/,
      path.join(tmp, 'proxy.stderr.log'),
    );
    proxy.proc.once('exit', (code, signal) => (proxyExit = `exit code ${code ?? signal}`));
    const tally = new Tally();
    const figures = await measure(proxy, origins, tally, tls.cert);
    return report(tally, figures, proxy.log);
  } finally {
    closeAll();
    await origins.close();
    if (proxy) await stopChild(proxy);
  }
}

/** Warm-up, start reading, load with a reading every few seconds, end reading. */
async function measure(proxy: Child, origins: Origins, tally: Tally, ca: Buffer): Promise<Figures> {
  const base = { proxyPort: Number(/:(\d+)$/.exec(proxy.ready)![1]), ports: origins.ports, tally, giveUpMs: CONFIG.quietMs };
  const figures: Figures = { loadSeconds: 0, quietSeconds: 0, loadRequests: 0, cpuS: NaN, samples: [], openAtOrigins: NaN, openAtClients: NaN };
  say(`proxyline soak — node ${process.version}, ${os.cpus().length} CPUs, loopback 127.0.0.1 only`);
  say(`config: ${JSON.stringify({ ...CONFIG, maxFdGrowth: MAX_FD_GROWTH, maxRssGrowthMB: MAX_RSS_GROWTH_MB })}`);
  say(`proxy plugins: ${JSON.stringify(PROXY_PLUGINS)}`);
  say(`client loops: well-behaved ${JSON.stringify(WELL_BEHAVED)}; faulty/idle ${JSON.stringify(FAULTY)}`);

  await phase('warm-up', CONFIG.warmupSeconds, base, ca);
  if (proxyExit !== undefined) return figures;
  const pid = proxy.pid;
  const t0 = performance.now();
  const read = (): Sample => ({ atS: (performance.now() - t0) / 1000, fds: fdCount(pid), rssKiB: rssKiB(pid) });
  figures.start = read();
  figures.samples.push(figures.start);
  log(`start reading: proxy fds ${figures.start.fds}, RSS ${mb(figures.start.rssKiB).toFixed(1)} MB`);
  const cpuStart = cpuMs(pid);
  const doneBefore = sum(tally.done);
  const sampler = setInterval(() => {
    try {
      const sample = read();
      figures.samples.push(sample);
      log(
        `${sample.atS.toFixed(0)} s: done ${sum(tally.done)}, failed ${tally.failures}, client sockets ${openSockets.size}, proxy fds ${sample.fds}, RSS ${mb(sample.rssKiB).toFixed(1)} MB`,
      );
    } catch {
      // the proxy is gone; proxyExit says why
    }
  }, CONFIG.sampleSeconds * 1000);
  let stopAt = performance.now();
  try {
    if (!interrupted) ({ loadSeconds: figures.loadSeconds, stopAt } = await phase('load', CONFIG.seconds, base, ca));
  } finally {
    clearInterval(sampler);
  }
  figures.quietSeconds = (performance.now() - stopAt) / 1000;
  figures.loadRequests = sum(tally.done) - doneBefore;
  figures.openAtOrigins = origins.openConnections();
  figures.openAtClients = openSockets.size;
  if (proxyExit === undefined) {
    figures.end = read();
    figures.samples.push(figures.end);
    figures.cpuS = (cpuMs(pid) - cpuStart) / 1000;
  }
  return figures;
}

/**
 * Runs the whole client mix for `seconds` (less on Ctrl-C or if the proxy exits), lets the
 * clients still busy end on their own (closing any left after WIND_DOWN_MS), then waits until
 * `quietMs` after the load stopped (at least MIN_SETTLE_MS after the last client closed).
 * Returns how long the load ran, in seconds, and when it stopped (performance.now()).
 */
async function phase(name: string, seconds: number, base: Omit<ClientContext, 'stopping'>, ca: Buffer): Promise<{ loadSeconds: number; stopAt: number }> {
  log(`${name}: ${seconds} s of load`);
  const startedAt = performance.now();
  let stopAt: number | undefined;
  const stopping = () => {
    if (stopAt === undefined && (performance.now() - startedAt >= seconds * 1000 || interrupted || proxyExit !== undefined)) stopAt = performance.now();
    return stopAt !== undefined;
  };
  let ended = false;
  const clients = Promise.all([runWellBehaved({ ...base, stopping }, WELL_BEHAVED, ca), runFaulty({ ...base, stopping }, FAULTY)]).finally(
    () => (ended = true),
  );
  // The loops look at stopping() only between iterations; this notes the moment the load stops.
  while (!stopping() && !ended) await sleep(100);
  stopping();
  for (const windDownEnd = performance.now() + WIND_DOWN_MS; !ended && performance.now() < windDownEnd;) await sleep(100);
  if (!ended) {
    log(`${name}: ${openSockets.size} client sockets still open ${WIND_DOWN_MS} ms after the load stopped; closing them`);
    closeAll();
  }
  await clients;
  const wait = Math.max(stopAt! + CONFIG.quietMs - performance.now(), MIN_SETTLE_MS);
  log(`${name}: load stopped; quiet for ${(wait / 1000).toFixed(1)} s`);
  await sleep(wait);
  return { loadSeconds: (stopAt! - startedAt) / 1000, stopAt: stopAt! };
}

/** Prints the figures, the targets and one JSON line; true when every target passes. */
function report(tally: Tally, figures: Figures, proxyLog: string): boolean {
  const { start, end, samples } = figures;
  const peak = (key: 'fds' | 'rssKiB') => Math.max(...samples.map((sample) => sample[key]));
  const signed = (n: number, digits = 0) => `${n >= 0 ? '+' : ''}${n.toFixed(digits)}`;

  say('\n## Run');
  const cpu = end
    ? `; proxy CPU ${figures.cpuS.toFixed(1)} s between the start and end readings (${((figures.cpuS / Math.max(end.atS, 1e-9)) * 100).toFixed(0)} % of one core)`
    : '';
  say(
    `duration: load ${figures.loadSeconds.toFixed(1)} s (after a ${CONFIG.warmupSeconds} s warm-up and a quiet period); end reading ${figures.quietSeconds.toFixed(1)} s after the load stopped`,
  );
  say(
    `well-behaved requests done during the load: ${figures.loadRequests} (${(figures.loadRequests / Math.max(figures.loadSeconds, 1e-9)).toFixed(0)}/s)${cpu}`,
  );
  if (interrupted) say('INTERRUPTED (Ctrl-C): the figures are those of a shortened run');
  if (proxyExit !== undefined) say(`THE PROXY EXITED during the run (${proxyExit})`);

  say('\n## Well-behaved requests (warm-up included)');
  const kinds = Object.keys(WELL_BEHAVED);
  const width = Math.max(...kinds.map((kind) => kind.length), 5);
  say(`${'kind'.padEnd(width)}  ${'done'.padStart(9)}  ${'failed'.padStart(7)}`);
  for (const kind of [...kinds, 'total']) {
    const done = kind === 'total' ? sum(tally.done) : (tally.done.get(kind) ?? 0);
    const failed = kind === 'total' ? tally.failures : (tally.failed.get(kind) ?? 0);
    say(`${kind.padEnd(width)}  ${String(done).padStart(9)}  ${String(failed).padStart(7)}`);
  }

  say(`\n## Unexpected failures: ${tally.failures}`);
  for (const line of tally.firstFailures) say(`  ${line}`);
  if (tally.failureReasons.size > 0) {
    say('  by reason (numbers as N):');
    for (const [reason, count] of [...tally.failureReasons].sort((a, b) => b[1] - a[1]).slice(0, 10)) say(`  ${String(count).padStart(7)}  ${reason}`);
  }

  say('\n## Faulty and idle clients (not failures): how they ended');
  for (const kind of Object.keys(FAULTY)) {
    const outcomes = tally.outcomes.get(kind);
    say(`${kind}${outcomes ? '' : ': none ended'}`);
    for (const [how, count] of [...(outcomes ?? [])].sort((a, b) => b[1] - a[1])) say(`  ${String(count).padStart(7)}  ${how}`);
  }

  say('\n## Proxy resources (/proc/PID; peak of readings every ' + CONFIG.sampleSeconds + ' s)');
  if (start && end) {
    say(`${''.padEnd(10)}  ${'start'.padStart(7)}  ${'peak'.padStart(7)}  ${'end'.padStart(7)}  ${'end-start'.padStart(9)}`);
    say(
      `${'open fds'.padEnd(10)}  ${String(start.fds).padStart(7)}  ${String(peak('fds')).padStart(7)}  ${String(end.fds).padStart(7)}  ${signed(end.fds - start.fds).padStart(9)}`,
    );
    const rss = [start.rssKiB, peak('rssKiB'), end.rssKiB].map((kib) => mb(kib).toFixed(1).padStart(7));
    say(`${'RSS (MB)'.padEnd(10)}  ${rss.join('  ')}  ${signed(mb(end.rssKiB - start.rssKiB), 1).padStart(9)}`);
  } else {
    say(
      `${start ? `start reading: ${start.fds} fds, RSS ${mb(start.rssKiB).toFixed(1)} MB; ` : ''}no ${start ? '' : 'start or '}end reading (the proxy exited)`,
    );
  }
  say(`at the end reading: ${figures.openAtOrigins} connections open at the origins, ${figures.openAtClients} client sockets open`);
  const stderr = readLines(proxyLog);
  say(`proxy stderr: ${stderr.length} lines${stderr.length ? ', first ones:' : ''}`);
  for (const line of proxyExit !== undefined ? stderr.slice(-10) : stderr.slice(0, 3)) say(`  ${line.slice(0, 300)}`);

  const goals: Target[] = [
    {
      name: 'zero unexpected failures',
      measured: proxyExit === undefined ? `${tally.failures}` : `the proxy exited (${proxyExit})`,
      pass: tally.failures === 0 && proxyExit === undefined,
    },
    start && end
      ? {
          name: `end fds within +${MAX_FD_GROWTH} of start`,
          measured: `${start.fds} → ${end.fds} (${signed(end.fds - start.fds)})`,
          pass: end.fds - start.fds <= MAX_FD_GROWTH,
        }
      : { name: `end fds within +${MAX_FD_GROWTH} of start`, measured: 'not measured', pass: false },
    start && end
      ? {
          name: `RSS growth under ${MAX_RSS_GROWTH_MB} MB`,
          measured: `${mb(start.rssKiB).toFixed(1)} → ${mb(end.rssKiB).toFixed(1)} MB (${signed(mb(end.rssKiB - start.rssKiB), 1)} MB)`,
          pass: mb(end.rssKiB - start.rssKiB) < MAX_RSS_GROWTH_MB,
        }
      : { name: `RSS growth under ${MAX_RSS_GROWTH_MB} MB`, measured: 'not measured', pass: false },
  ];
  const pass = goals.every((goal) => goal.pass) && !interrupted;
  say(targets(goals));
  say(`\nRESULT: ${pass ? 'PASS' : interrupted ? 'FAIL (interrupted)' : 'FAIL'}`);
  const entries = (map: Map<string, number>) => Object.fromEntries(map);
  say(
    JSON.stringify({
      config: CONFIG,
      plugins: PROXY_PLUGINS,
      loadSeconds: figures.loadSeconds,
      loadRequests: figures.loadRequests,
      done: entries(tally.done),
      failed: entries(tally.failed),
      firstFailures: tally.firstFailures,
      failureReasons: entries(tally.failureReasons),
      outcomes: Object.fromEntries([...tally.outcomes].map(([kind, map]) => [kind, entries(map)])),
      fds: start && end ? { start: start.fds, peak: peak('fds'), end: end.fds } : undefined,
      rssMB: start && end ? { start: mb(start.rssKiB), peak: mb(peak('rssKiB')), end: mb(end.rssKiB) } : undefined,
      proxyCpuS: figures.cpuS,
      proxyExit,
      interrupted,
      pass,
    }),
  );
  return pass;
}

/** The non-empty lines of a file (none if it is missing). */
function readLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.length > 0);
  } catch {
    return [];
  }
}

// Everything bounded: a watchdog ends the run if it ever takes far longer than planned.
const WATCHDOG_MS = (CONFIG.warmupSeconds + CONFIG.seconds) * 1000 + 2 * (WIND_DOWN_MS + CONFIG.quietMs) + 60_000;
setTimeout(() => {
  log(`watchdog: still running after ${WATCHDOG_MS} ms, stopping`);
  process.exit(1);
}, WATCHDOG_MS).unref();
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  log('Ctrl-C: stopping the load, then the report (Ctrl-C again to quit at once)');
});
process.on('SIGTERM', () => process.exit(143));
// At any exit: client sockets closed, children killed, temp dir removed.
process.on('exit', () => {
  closeAll();
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

soak().then(
  (pass) => process.exit(interrupted ? 130 : pass ? 0 : 1),
  (error: unknown) => {
    log(`failed: ${(error as Error).stack ?? String(error)}`);
    for (const line of readLines(path.join(tmp, 'proxy.stderr.log')).slice(-10)) log(`proxy stderr: ${line}`);
    process.exit(1);
  },
);
