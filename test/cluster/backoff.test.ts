import test from 'ava';
import { DEFAULT_BACKOFF, RestartBackoff } from '../../src/cluster/backoff.js';

test('restart delays double from 100 ms up to 10 s while the worker keeps dying young', (t) => {
  const backoff = new RestartBackoff();
  const delays = Array.from({ length: 10 }, () => backoff.delay(50));
  t.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
});

test('a worker that stayed up long enough is restarted after the shortest delay again', (t) => {
  const backoff = new RestartBackoff({ minMs: 10, maxMs: 1000, stableMs: 500 });
  t.is(backoff.delay(0), 10);
  t.is(backoff.delay(499), 20);
  t.is(backoff.delay(500), 10);
  t.is(backoff.delay(0), 20);
  t.is(DEFAULT_BACKOFF.minMs, 100);
});
