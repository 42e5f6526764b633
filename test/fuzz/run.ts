// `npm run fuzz`: runs every parser property (properties.ts) for FUZZ_RUNS inputs in total,
// split evenly, and prints per property the inputs, how many were accepted and refused with each
// error code, and the time taken. Exits 1 on a failure (fast-check's counterexample, seed and
// path are printed, with the command that replays it) or on a hang.
//
// The properties run in a worker thread: a parser stuck in a loop blocks its thread, so the main
// thread watches a heartbeat and, when it stops for FUZZ_HANG_MS, prints the input being parsed.
//
// Environment: FUZZ_RUNS (1000000), FUZZ_SEED (random), FUZZ_ONLY (names containing this text),
// FUZZ_PATH (replay one failure: with FUZZ_SEED and FUZZ_ONLY as printed), FUZZ_HANG_MS (60000).
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { newStats, PROPERTIES, type Stats } from './properties.js';

/** What the main thread tells the worker. */
interface Plan {
  seed: number;
  path?: string;
  /** Index in PROPERTIES and number of inputs, per property to run. */
  runs: [index: number, numRuns: number][];
  shared: SharedArrayBuffer;
}

/** What the worker reports per property. */
interface Result {
  index: number;
  stats: Stats;
  ms: number;
  failure?: string;
}

/** Heartbeat slots: inputs so far (all properties), property running, inputs in it, input length. */
const BEAT = 0;
const PROPERTY = 1;
const RUN = 2;
const LENGTH = 3;
const HEADER_BYTES = 16;
/** Longest input kept for a hang report. */
const MAX_KEPT = 1 << 16;

function main(): void {
  const total = Number(process.env.FUZZ_RUNS ?? 1_000_000);
  const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 0x7fffffff));
  const only = process.env.FUZZ_ONLY;
  const path = process.env.FUZZ_PATH;
  const hangMs = Number(process.env.FUZZ_HANG_MS ?? 60_000);
  if (!Number.isInteger(total) || total < 1 || !Number.isInteger(seed)) {
    process.stderr.write('fuzz: FUZZ_RUNS must be a positive integer and FUZZ_SEED an integer\n');
    process.exit(2);
  }
  const chosen = PROPERTIES.map((p, index) => ({ p, index })).filter(({ p }) => only === undefined || p.name.includes(only));
  if (chosen.length === 0) {
    process.stderr.write(`fuzz: no property name contains ${JSON.stringify(only)}\n`);
    process.exit(2);
  }
  const runs = chosen.map(({ index }, i): [number, number] => [index, Math.floor(total / chosen.length) + (i < total % chosen.length ? 1 : 0)]);
  const shared = new SharedArrayBuffer(HEADER_BYTES + MAX_KEPT);
  const beat = new Int32Array(shared, 0, 4);
  const what =
    path === undefined ? `${total} inputs over ${chosen.length} properties` : `replaying path ${path} of ${chosen.map(({ p }) => p.name).join(', ')}`;
  say(`proxyline fuzz: ${what}, seed ${seed} (node ${process.version}, ${os.cpus().length} CPUs)`);
  say(`${'property'.padEnd(27)}${'inputs'.padStart(9)}${'accepted'.padStart(10)}  refused${' '.repeat(52)}time`);

  const started = performance.now();
  let failed = false;
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { seed, path, runs, shared } satisfies Plan });
  let last = -1;
  let still = 0;
  const watchdog = setInterval(() => {
    const now = Atomics.load(beat, BEAT);
    still = now === last ? still + 1000 : 0;
    last = now;
    if (still < hangMs) return;
    const index = Atomics.load(beat, PROPERTY);
    const length = Atomics.load(beat, LENGTH);
    const input = Buffer.from(shared, HEADER_BYTES, Math.min(length, MAX_KEPT)).toString('latin1');
    say(`HANG: ${PROPERTIES[index]!.name} made no progress for ${hangMs} ms on its input #${Atomics.load(beat, RUN)}:`);
    say(`  ${JSON.stringify(input)}${length > MAX_KEPT ? ` (first ${MAX_KEPT} of ${length} bytes)` : ''}`);
    say(`  replay: ${replay(seed, PROPERTIES[index]!.name, path ?? String(Atomics.load(beat, RUN) - 1))}`);
    failed = true;
    clearInterval(watchdog);
    void worker.terminate();
  }, 1000);
  worker.on('message', (result: Result) => {
    const { name } = PROPERTIES[result.index]!;
    const refused = [...result.stats.refused]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    say(
      `${name.padEnd(27)}${String(result.stats.inputs).padStart(9)}${String(result.stats.accepted).padStart(10)}  ${refused.padEnd(58)} ${(result.ms / 1000).toFixed(1).padStart(6)} s`,
    );
    if (result.failure !== undefined) {
      failed = true;
      say(`FAIL: ${name}\n${indent(result.failure.replace(/^\s+at .*\n/gm, ''))}`);
      const failurePath = /path: "([^"]*)"/.exec(result.failure)?.[1];
      if (failurePath !== undefined) say(`  replay: ${replay(seed, name, failurePath)}`);
    }
  });
  worker.on('error', (error) => {
    failed = true;
    say(`CRASH: the fuzz worker died: ${error.stack ?? String(error)}`);
  });
  worker.on('exit', () => {
    clearInterval(watchdog);
    const seconds = (performance.now() - started) / 1000;
    const inputs = Atomics.load(beat, BEAT);
    say(`${failed ? 'FAILED' : 'passed'}: ${inputs} inputs in ${seconds.toFixed(1)} s (${Math.round(inputs / seconds)}/s)`);
    process.exitCode = failed ? 1 : 0;
  });
}

/** Runs the planned properties, reporting each; keeps the current input in shared memory. */
function work(plan: Plan): void {
  const beat = new Int32Array(plan.shared, 0, 4);
  const kept = new Uint8Array(plan.shared, HEADER_BYTES, MAX_KEPT);
  const onInput = (input: Buffer) => {
    kept.set(input.length <= MAX_KEPT ? input : input.subarray(0, MAX_KEPT));
    Atomics.store(beat, LENGTH, input.length);
    Atomics.add(beat, RUN, 1);
    Atomics.add(beat, BEAT, 1);
  };
  for (const [index, numRuns] of plan.runs) {
    Atomics.store(beat, PROPERTY, index);
    Atomics.store(beat, RUN, 0);
    const stats = newStats();
    const started = performance.now();
    let failure: string | undefined;
    try {
      // Each property its own seed, the same whichever properties are chosen.
      PROPERTIES[index]!.run({ numRuns, seed: plan.seed + index, path: plan.path, stats, onInput });
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    }
    parentPort!.postMessage({ index, stats, ms: performance.now() - started, failure } satisfies Result);
  }
}

/** The command that replays one run of a property. */
function replay(seed: number, name: string, path: string): string {
  return `FUZZ_SEED=${seed} FUZZ_ONLY='${name}' FUZZ_PATH='${path}' npm run fuzz`;
}

const indent = (text: string) => text.replace(/^/gm, '  ');
const say = (text: string) => process.stdout.write(`${text}\n`);

if (isMainThread) main();
else work(workerData as Plan);
