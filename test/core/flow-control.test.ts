import test from 'ava';
import { FlowControl } from '../../src/core/flow-control.js';

function fakeSource() {
  const calls: string[] = [];
  return { calls, pause: () => void calls.push('pause'), resume: () => void calls.push('resume') };
}

test('the source pauses on the first reason and resumes when the last one is released', (t) => {
  const source = fakeSource();
  const flow = new FlowControl(source);
  flow.hold('sink');
  flow.hold('dial');
  flow.hold('sink');
  t.true(flow.paused);
  t.deepEqual(flow.held(), ['sink', 'dial']);
  flow.release('sink');
  t.true(flow.paused);
  flow.release('dial');
  t.false(flow.paused);
  t.deepEqual(source.calls, ['pause', 'resume']);
});

test('releasing a reason that is not held does nothing', (t) => {
  const source = fakeSource();
  const flow = new FlowControl(source);
  flow.release('sink');
  t.deepEqual(source.calls, []);
});
