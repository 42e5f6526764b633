// The experiment, start to end: the origin, the proxy (the CLI as a child process), the client, then
// `proxyline report` on the capture. Everything on 127.0.0.1, everything stopped before it returns.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { checkSummary, formatSummary, runClient, type ClientSummary } from './client.js';
import { startOrigin } from './origin.js';

/** The compiled CLI: this file is dist/examples/research/run.js. */
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
/** The example's plugins.json, in the source tree. */
const PLUGINS = fileURLToPath(new URL('../../../examples/research/plugins.json', import.meta.url));

/** How to run the experiment. */
export interface ExperimentOptions {
  /** The faults plugin's seed. */
  seed: number;
  /** Requests the client makes. */
  requests: number;
  /** Folder for this run's plugins.json, capture.jsonl and report.html (created; its old capture removed). */
  outDir: string;
  /** Where progress lines go (default: nowhere). */
  log?: (line: string) => void;
}

/** One request's fault decisions, as the capture recorded them. */
export interface Decision {
  /** The client connection's ordinal. */
  connection: number;
  /** The request's ordinal on it. */
  exchange: number;
  /** The names of the faults that fired, in order. */
  faults: string[];
}

/** What a run produced. */
export interface ExperimentResult {
  /** What the client saw. */
  summary: ClientSummary;
  /** The capture file. */
  capture: string;
  /** The HTML report. */
  report: string;
  /** Every exchange's fault decisions, in (connection, exchange) order. */
  decisions: Decision[];
}

/** The capture's fault decisions in (connection, exchange) order: what must be the same on a replay. */
export function readDecisions(capture: string): Decision[] {
  return readFileSync(capture, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { connection: number; exchange: number; faults: { name: string }[] })
    .map(({ connection, exchange, faults }) => ({ connection, exchange, faults: faults.map((fault) => fault.name) }))
    .sort((a, b) => a.connection - b.connection || a.exchange - b.exchange);
}

/** Writes the example's plugins.json into `outDir` with this run's seed and the capture in `outDir`. */
function writeConfig(outDir: string, seed: number): string {
  const config = JSON.parse(readFileSync(PLUGINS, 'utf8')) as { $schema?: string; plugins: { name: string; options?: Record<string, unknown> }[] };
  delete config.$schema;
  for (const plugin of config.plugins) {
    if (plugin.name === 'faults') plugin.options = { ...plugin.options, seed };
    if (plugin.name === 'capture') plugin.options = { ...plugin.options, path: 'capture.jsonl' };
  }
  const file = path.join(outDir, 'plugins.json');
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
  return file;
}

/** Waits for the CLI's `proxyline listening on …` and `proxyline admin on …` lines (15 s at most). */
function waitForProxy(child: ChildProcess & { stdout: NodeJS.ReadableStream }, stderr: () => string): Promise<{ proxyUrl: string; adminUrl: string }> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`the proxy ${why}; stderr: ${stderr()}`));
    };
    const timer = setTimeout(() => fail('did not start within 15 s'), 15_000);
    child.once('exit', (code) => fail(`exited with ${code}`));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const proxy = /proxyline listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(stdout);
      const admin = /proxyline admin on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(stdout);
      if (proxy?.[1] !== undefined && admin?.[1] !== undefined) {
        clearTimeout(timer);
        resolve({ proxyUrl: proxy[1], adminUrl: admin[1] });
      }
    });
  });
}

/** Stops a child: SIGTERM (the proxy writes out its capture and exits), SIGKILL after 10 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Runs the CLI with `args` to its exit (killed after 20 s); throws unless it exits 0. */
async function runCli(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`proxyline ${args[0]} exited with ${code}: ${stderr}`);
  return stderr.trim();
}

/** A path relative to the working folder when it is under it, else absolute. */
function shown(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') ? file : relative;
}

/** Runs the experiment once: origin, proxy, client, shutdown, report. */
export async function runExperiment(options: ExperimentOptions): Promise<ExperimentResult> {
  const log = options.log ?? (() => undefined);
  const outDir = path.resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  // The capture plugin appends: a fresh run starts from no capture at all.
  for (const name of readdirSync(outDir)) if (/^capture(\.\d+)?\.jsonl$/.test(name)) rmSync(path.join(outDir, name));
  const config = writeConfig(outDir, options.seed);
  const capture = path.join(outDir, 'capture.jsonl');
  const report = path.join(outDir, 'report.html');

  const origin = await startOrigin();
  let proxy: ChildProcess | undefined;
  let summary: ClientSummary;
  try {
    const args = [CLI, '--host', '127.0.0.1', '--port', '0', '--admin-port', '0', '--config', config, '--grace-period', '1000'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proxy = child;
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 10_000) stderr += chunk;
    });
    const { proxyUrl, adminUrl } = await waitForProxy(child, () => stderr);
    const originUrl = `http://127.0.0.1:${origin.port}`;
    log(`research: seed ${options.seed}, ${options.requests} requests to ${originUrl} through ${proxyUrl} (faults at ${adminUrl}/faults)`);
    summary = await runClient({ proxyUrl, originUrl, requests: options.requests });
  } finally {
    if (proxy !== undefined) await stop(proxy);
    await origin.close();
  }
  log(formatSummary(summary));
  const problems = checkSummary(summary);
  if (problems.length > 0) throw new Error(`the summary does not add up: ${problems.join('; ')}`);

  const decisions = readDecisions(capture);
  const fired: Record<string, number> = {};
  for (const decision of decisions) for (const name of decision.faults) fired[name] = (fired[name] ?? 0) + 1;
  const firedText = Object.entries(fired)
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
  log(`capture:   ${decisions.length} exchanges, faults fired: ${firedText || 'none'} (${shown(capture)})`);
  log(await runCli(['report', capture, '--out', report]));
  return { summary, capture, report, decisions };
}

// npm run build && node dist/examples/research/run.js --seed 42 --requests 200 [--out examples/research/runs/seed-42]
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { seed: { type: 'string', default: '42' }, requests: { type: 'string' }, out: { type: 'string' } } });
  const seed = Number(values.seed);
  const requests = Number(values.requests ?? process.env.REQUESTS ?? 200);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed: an integer 0–4294967295, not ${values.seed}`);
  if (!Number.isInteger(requests) || requests < 1 || requests > 100_000) throw new Error(`--requests: an integer 1–100000, not ${values.requests}`);
  const outDir = values.out ?? path.join('examples/research/runs', `seed-${seed}`);
  await runExperiment({ seed, requests, outDir, log: (line) => console.log(line) });
}
