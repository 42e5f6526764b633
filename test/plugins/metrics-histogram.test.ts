import test from 'ava';
import { Histogram, Registry } from 'prom-client';
import { BucketHistogram } from '../../src/plugins/metrics-histogram.js';

const BOUNDS = [0.005, 0.01, 0.5, 1, 10];
const VALUES = [0, 0.005, 0.0050001, 0.01, 0.3, 0.5, 1, 9.99, 10, 10.5, 1e6];

test('BucketHistogram is served exactly as a prom-client Histogram with the same observations', async (t) => {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: 'x_seconds', help: 'Some durations.', buckets: BOUNDS, registers: [theirs] });
  const histogram = new BucketHistogram('x_seconds', 'Some durations.', BOUNDS, ours);
  for (const value of VALUES) {
    reference.observe(value);
    histogram.observe(value);
  }
  const text = await ours.metrics();
  t.is(text, await theirs.metrics());
  t.regex(text, /^x_seconds_bucket\{le="0.005"\} 2$/m, 'a value equal to a bound is in that bucket');
  t.regex(text, /^x_seconds_bucket\{le="\+Inf"\} 11$/m);
  // The JSON form too, but for prom-client's exemplar slots, which these series never fill.
  const withoutExemplars = (json: unknown) => JSON.parse(JSON.stringify(json, (key, value: unknown) => (key === 'exemplar' ? undefined : value))) as unknown;
  t.deepEqual(withoutExemplars(await ours.getMetricsAsJSON()), withoutExemplars(await theirs.getMetricsAsJSON()));
});

test('BucketHistogram: reset forgets every observation; a second one of the same name is refused by the registry', async (t) => {
  const registry = new Registry();
  const histogram = new BucketHistogram('y_seconds', 'More durations.', BOUNDS, registry);
  histogram.observe(0.2);
  registry.resetMetrics();
  const text = await registry.metrics();
  t.regex(text, /^y_seconds_count 0$/m);
  t.regex(text, /^y_seconds_sum 0$/m);
  t.regex(text, /^y_seconds_bucket\{le="1"\} 0$/m);
  t.throws(() => new BucketHistogram('y_seconds', 'Again.', BOUNDS, registry), { message: /already been registered/ });
});
