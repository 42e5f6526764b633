import test from 'ava';
import { map, Observable, Subscriber, type MonoTypeOperatorFunction } from 'rxjs';
import { dataEvent, type ProxyEvent } from '../../src/core/events.js';
import { subscribeThrough } from '../../src/core/pipeline.js';
import { Stage, stage } from '../../src/core/stage.js';

/** Appends its tag to each data chunk; counts its finalizations. */
class Tagger extends Stage {
  static finalized: string[] = [];
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly tag: string,
  ) {
    super(downstream);
  }
  protected onEvent(event: ProxyEvent): void {
    this.emit(event.kind === 'data' ? dataEvent(Buffer.concat([event.chunk, Buffer.from(this.tag)])) : event);
  }
  protected override onFinalize(): void {
    Tagger.finalized.push(this.tag);
  }
}

const tagger = (tag: string) => stage((downstream) => new Tagger(downstream, tag));
/** A plain RxJS operator (not made by `stage()`), as a user plugin may return. */
const upper: MonoTypeOperatorFunction<ProxyEvent> = map((event) =>
  event.kind === 'data' ? dataEvent(Buffer.from(event.chunk.toString().toUpperCase())) : event,
);

/** A sink recording each data chunk as text (other events by kind) and whether it completed. */
function recordingSink() {
  const seen: string[] = [];
  const state = { completed: false };
  const sink = new Subscriber<ProxyEvent>({
    next: (event: ProxyEvent) => void seen.push(event.kind === 'data' ? event.chunk.toString() : event.kind),
    error: () => {},
    complete: () => (state.completed = true),
  });
  return { sink, seen, state };
}

/** A source that emits `chunks` when subscribed, and records its subscriptions and teardowns. */
function recordingSource(chunks: string[]) {
  const record = { subscribed: 0, tornDown: 0 };
  const source = new Observable<ProxyEvent>((subscriber) => {
    record.subscribed++;
    for (const chunk of chunks) subscriber.next(dataEvent(Buffer.from(chunk)));
    return () => void record.tornDown++;
  });
  return { source, record };
}

test('stages and plain operators apply in list order, linked or not', (t) => {
  Tagger.finalized = [];
  const { source, record } = recordingSource(['x', 'y']);
  const { sink, seen } = recordingSink();
  subscribeThrough(source, [tagger('a'), upper, tagger('b'), tagger('c')], sink);
  t.deepEqual(seen, ['XAbc', 'YAbc'], 'a, then the plain operator, then b and c (linked directly)');
  t.is(record.subscribed, 1);
  sink.unsubscribe();
  t.is(record.tornDown, 1, 'the source is torn down with the sink');
  t.deepEqual(Tagger.finalized.sort(), ['a', 'b', 'c'], 'every stage is finalized once');
});

test('a chain of stages only: one subscription to the source, completion reaches the sink', (t) => {
  let subscriptions = 0;
  const source = new Observable<ProxyEvent>((subscriber) => {
    subscriptions++;
    subscriber.next(dataEvent(Buffer.from('q')));
    subscriber.complete();
  });
  const { sink, seen, state } = recordingSink();
  subscribeThrough(source, [tagger('1'), tagger('2')], sink);
  t.is(subscriptions, 1);
  t.deepEqual(seen, ['q12']);
  t.true(state.completed);
});

test('a stage that throws while being built: subscribeThrough throws, and the source is never subscribed', (t) => {
  const { source, record } = recordingSource(['x']);
  const broken = stage(() => {
    throw new Error('cannot build');
  });
  const { sink, seen } = recordingSink();
  t.throws(() => subscribeThrough(source, [tagger('a'), broken, tagger('b')], sink), { message: 'cannot build' });
  t.is(record.subscribed, 0);
  t.deepEqual(seen, []);
  sink.unsubscribe();
});
