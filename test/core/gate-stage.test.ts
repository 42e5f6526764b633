import test from 'ava';
import { Subject, Subscriber } from 'rxjs';
import { ConnectionContext } from '../../src/core/context.js';
import { ProxyError } from '../../src/core/errors.js';
import { dataEvent, requestHeadEvent, type ProxyEvent, type RequestHeadEvent } from '../../src/core/events.js';
import { Exchange } from '../../src/core/exchange.js';
import { GateStage, stage } from '../../src/core/stage.js';

const paused: string[] = [];
const fakeSocket = { pause: () => void paused.push('pause'), resume: () => void paused.push('resume') };
const head = (id: number, target: string): RequestHeadEvent => {
  const request = { method: 'GET', target, version: '1.1' as const, headers: [['Host', 'a'] as [string, string]] };
  return requestHeadEvent(request, new Exchange(id, request));
};

/** Passes /ok at once, waits for /slow until released, refuses /no. */
class TestGate extends GateStage {
  static release?: () => void;
  protected check(event: RequestHeadEvent): void | Promise<void> {
    if (event.head.target === '/no') throw new ProxyError('ERR_PROXY_FORBIDDEN', 'no');
    if (event.head.target === '/slow') return new Promise((resolve) => (TestGate.release = resolve));
  }
}

test('a gate passes, waits, holds the client, and refuses in order', async (t) => {
  const ctx = new ConnectionContext(1, fakeSocket as never, { address: '', port: 0 }, 0);
  const source = new Subject<ProxyEvent>();
  const seen: string[] = [];
  let completed = false;
  source.pipe(stage((downstream: Subscriber<ProxyEvent>) => new TestGate(downstream, ctx))).subscribe({
    next: (event) => seen.push(event.kind === 'request-head' ? `${event.head.target}${event.exchange.error ? ' refused' : ''}` : event.kind),
    complete: () => (completed = true),
  });
  source.next(head(1, '/ok'));
  source.next(head(2, '/slow'));
  source.next(dataEvent(Buffer.from('x')));
  source.next(head(3, '/no'));
  source.complete();
  t.deepEqual(seen, ['/ok']);
  t.true(ctx.inboundFlow.paused);
  t.false(completed);
  TestGate.release!();
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(seen, ['/ok', '/slow', 'data', '/no refused']);
  t.false(ctx.inboundFlow.paused);
  t.true(completed);
});
