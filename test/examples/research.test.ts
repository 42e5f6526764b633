import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { checkSummary } from '../../examples/research/client.js';
import { runExperiment, type ExperimentResult } from '../../examples/research/run.js';

// Three runs of the experiment, 40 requests each: seed 42 twice, then seed 43. Each starts its own
// origin and proxy (the CLI as a child process) and stops them before it returns.
const dir = mkdtempSync(path.join(os.tmpdir(), 'proxyline-research-'));
let runs: Promise<ExperimentResult[]> | undefined;
function experiments(): Promise<ExperimentResult[]> {
  runs ??= (async () => {
    const results: ExperimentResult[] = [];
    for (const [name, seed] of [
      ['first', 42],
      ['replay', 42],
      ['other', 43],
    ] as const) {
      results.push(await runExperiment({ seed, requests: 40, outDir: path.join(dir, name) }));
    }
    return results;
  })();
  return runs;
}

test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test.serial('examples/research: the same seed replays the same fault decisions; another seed draws others', async (t) => {
  const [first, replay, other] = await experiments();
  const fired = first!.decisions.filter((decision) => decision.faults.length > 0);
  t.true(first!.decisions.length >= 40, 'one record per attempt at least');
  t.true(fired.length > 0, 'some faults fired');
  t.deepEqual(replay!.decisions, first!.decisions);
  t.deepEqual(replay!.summary, first!.summary, 'the same faults, so the client saw the same');
  t.notDeepEqual(other!.decisions, first!.decisions);
});

test.serial('examples/research: the client summary adds up and matches the capture', async (t) => {
  for (const { summary, decisions, report } of await experiments()) {
    t.deepEqual(checkSummary(summary), []);
    t.is(summary.requests, 40);
    t.is(decisions.length, summary.attempts, 'one exchange captured per attempt');
    // The origin never fails: every 503 is the abort fault, every broken body the cut (its 16 bytes
    // are more than the abort's 13-byte body, so a cut drawn with an abort leaves the 503 whole).
    const aborted = decisions.filter((decision) => decision.faults.includes('abort-503')).length;
    const cut = decisions.filter((decision) => decision.faults.join() === 'cut-body').length;
    t.is(summary.outcomes['http-503'] ?? 0, aborted);
    t.is(summary.outcomes['body-cut'] ?? 0, cut);
    t.is(summary.outcomes.ok, summary.attempts - aborted - cut);
    t.regex(readFileSync(report, 'utf8').slice(0, 200), /<!doctype html>/i);
  }
});
