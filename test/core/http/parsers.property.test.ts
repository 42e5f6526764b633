// The parser properties of test/fuzz/properties.ts, a few hundred inputs each with a fixed seed
// so a failure here is reproducible (fast-check's report names the seed and path to replay it;
// `npm run fuzz` runs the same properties on many more inputs).
import test from 'ava';
import { newStats, PROPERTIES } from '../../fuzz/properties.js';

/** Fixed unless FUZZ_SEED overrides it (to try other inputs locally). */
const SEED = Number(process.env.FUZZ_SEED ?? 20_240_611);
/** Inputs per property: the whole file takes a few seconds on a 2-core machine. */
const RUNS = 1000;

for (const [index, property] of PROPERTIES.entries()) {
  test(`property: ${property.name}`, (t) => {
    const stats = newStats();
    t.notThrows(() => property.run({ numRuns: RUNS, seed: SEED + index, stats }));
    t.true(stats.inputs >= RUNS);
    if (property.name.endsWith('round-trip')) t.is(stats.accepted, stats.inputs, 'every valid message is accepted');
    else if (property.name.endsWith('refuses-bad')) t.is(stats.accepted, 0, 'every bad message is refused');
    else {
      // The random inputs reach both sides: accepted ones and refused ones.
      t.true(stats.accepted > 0, 'some inputs are accepted');
      t.true(stats.refused.size > 0, 'some inputs are refused');
    }
  });
}
