// `npm run bench:pipeline`: what each chain costs in JavaScript per kept-alive request, with no
// sockets (pipeline-worker.ts: in-memory client ↔ proxy ↔ origin, one process per measurement).
// Chains: the default (the repository's plugins.json without the logger), the default plus each
// production plugin alone, and the full production chain. Runs go round-robin across the chains
// `BENCH_PIPELINE_RUNS` times (default 3), and each chain keeps its lowest CPU per request: on a
// shared machine the noise only ever adds. Far steadier than the socket benches, so it is the
// tool for asking what a plugin costs; the socket benches say what users get.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PRODUCTION_AUTHORIZATION, PRODUCTION_PLUGINS, productionPlugins } from './production.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const RUNS = Number(process.env.BENCH_PIPELINE_RUNS ?? 3);
const REQUESTS = Number(process.env.BENCH_PIPELINE_REQUESTS ?? 2000);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'proxyline-pipeline-'));
try {
  const production = productionPlugins(tmp, 443);
  const repository = JSON.parse(readFileSync(path.join(ROOT, 'plugins.json'), 'utf8')) as { plugins: { name: string }[] };
  const chains: { name: string; plugins: object[] }[] = [
    { name: 'default', plugins: repository.plugins.filter((plugin) => plugin.name !== 'logger') },
    ...PRODUCTION_PLUGINS.map((extra) => ({
      name: `default + ${extra}`,
      plugins: production.filter((plugin) => !PRODUCTION_PLUGINS.includes(plugin.name) || plugin.name === extra),
    })),
    { name: 'production', plugins: production },
  ];
  const files = chains.map((chain, i) => {
    const file = path.join(tmp, `chain-${i}.json`);
    writeFileSync(file, JSON.stringify({ plugins: chain.plugins }));
    return file;
  });
  const best = chains.map(() => Infinity);
  for (let run = 0; run < RUNS; run++) {
    chains.forEach((chain, i) => {
      const output = execFileSync(process.execPath, [path.join(here, 'pipeline-worker.js'), files[i]!, PRODUCTION_AUTHORIZATION, '50', String(REQUESTS)], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      const { cpuUsPerRequest } = JSON.parse(output) as { cpuUsPerRequest: number };
      process.stderr.write(`bench:pipeline run ${run + 1} ${chain.name}: ${cpuUsPerRequest.toFixed(2)} µs\n`);
      best[i] = Math.min(best[i]!, cpuUsPerRequest);
    });
  }
  const base = best[0]!;
  process.stdout.write(`JavaScript CPU per kept-alive request, in-memory sockets, 50 clients × ${REQUESTS} requests, lowest of ${RUNS} runs\n`);
  process.stdout.write('(the fake clients and origin are in it too, alike for every chain: compare differences)\n\n');
  const width = Math.max(...chains.map((chain) => chain.name.length));
  chains.forEach((chain, i) => {
    const extra = i === 0 ? '' : `   ${best[i]! >= base ? '+' : ''}${(best[i]! - base).toFixed(2)} µs over default`;
    process.stdout.write(`${chain.name.padEnd(width)}  ${best[i]!.toFixed(2).padStart(6)} µs${extra}\n`);
  });
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
