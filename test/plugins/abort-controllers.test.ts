// The dial controllers upstream-dialer reuses: only one that was not aborted and has no 'abort'
// listener left comes back, so a listener a dialer left behind can never fire on a later dial.
import test from 'ava';
import { AbortControllers } from '../../src/plugins/abort-controllers.js';

test('a controller handed back clean is the next one taken', (t) => {
  const controllers = new AbortControllers();
  const first = controllers.take();
  const listener = () => {};
  first.signal.addEventListener('abort', listener);
  first.signal.removeEventListener('abort', listener);
  controllers.give(first);
  t.is(controllers.take(), first);
  t.not(controllers.take(), first, 'taken once, it is not handed out twice');
});

test('an aborted controller is not reused', (t) => {
  const controllers = new AbortControllers();
  const aborted = controllers.take();
  aborted.abort(new Error('timed out'));
  controllers.give(aborted);
  const next = controllers.take();
  t.not(next, aborted);
  t.false(next.signal.aborted);
});

test('a controller whose signal still has an abort listener is not reused', (t) => {
  const controllers = new AbortControllers();
  const held = controllers.take();
  let fired = 0;
  held.signal.addEventListener('abort', () => fired++);
  controllers.give(held);
  const next = controllers.take();
  t.not(next, held);
  next.abort(new Error('a later dial timed out'));
  t.is(fired, 0, 'the leftover listener did not see the later abort');
});

test('at most 64 spare controllers are kept', (t) => {
  const controllers = new AbortControllers();
  const given = Array.from({ length: 100 }, () => new AbortController());
  for (const controller of given) controllers.give(controller);
  const taken = new Set(Array.from({ length: 100 }, () => controllers.take()));
  t.is([...taken].filter((controller) => given.includes(controller)).length, 64);
});
