// The byte-stream faults against a recording context: what each emits, in which order, when it
// holds and releases the source, and that dispose leaves nothing behind. Real timers with small
// values; nothing is asserted about wall time, only order and counts, with bounded waits.
import test, { type ExecutionContext } from 'ava';
import { ProxyError } from '../../src/core/errors.js';
import { createStreamFault, type StreamFault, type StreamFaultConfig, type StreamFaultContext } from '../../src/plugins/faults/stream-faults.js';
import { pollUntil } from '../helpers/wire.js';

type Call =
  { kind: 'emit'; chunk: Buffer } | { kind: 'finish' } | { kind: 'hold' } | { kind: 'release' } | { kind: 'close'; error: ProxyError } | { kind: 'reset' };

/** A StreamFaultContext that records every call; its PRNG cycles through a fixed sequence. */
class RecordingContext implements StreamFaultContext {
  readonly calls: Call[] = [];
  /** Whether the (simulated) source is paused now. */
  held = false;
  /** Called after each emit is recorded (a synchronous source, a teardown from downstream). */
  onEmit?: (chunk: Buffer) => void;
  private draw = 0;

  constructor(private readonly draws: readonly number[] = [0.5]) {}

  emit(chunk: Buffer): void {
    this.calls.push({ kind: 'emit', chunk });
    this.onEmit?.(chunk);
  }
  finish(): void {
    this.calls.push({ kind: 'finish' });
  }
  hold(): void {
    this.calls.push({ kind: 'hold' });
    this.held = true;
  }
  release(): void {
    this.calls.push({ kind: 'release' });
    this.held = false;
  }
  close(error: ProxyError): void {
    this.calls.push({ kind: 'close', error });
  }
  reset(): void {
    this.calls.push({ kind: 'reset' });
  }
  random(): number {
    return this.draws[this.draw++ % this.draws.length]!;
  }

  kinds(): string[] {
    return this.calls.map((call) => call.kind);
  }
  emits(): Buffer[] {
    return this.calls.flatMap((call) => (call.kind === 'emit' ? [call.chunk] : []));
  }
  emitted(): Buffer {
    return Buffer.concat(this.emits());
  }
  count(kind: Call['kind']): number {
    return this.calls.filter((call) => call.kind === kind).length;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Waits (bounded: 2 s) until `predicate` holds. */
const until = (predicate: () => boolean) => pollUntil(predicate, 400, 5);

/** A buffer of `length` bytes on its own ArrayBuffer (not the pool), counting up from `from`. */
function bytes(length: number, from = 0): Buffer {
  const buffer = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buffer[i] = (from + i) & 0xff;
  return buffer;
}

/** Holds and releases alternate, starting with a hold, and every hold was released. */
function assertBalanced(t: ExecutionContext, ctx: RecordingContext): void {
  const flow = ctx.kinds().filter((kind) => kind === 'hold' || kind === 'release');
  flow.forEach((kind, i) => t.is(kind, i % 2 === 0 ? 'hold' : 'release', `flow call ${i}`));
  t.is(flow.length % 2, 0, 'every hold is released');
  t.false(ctx.held);
}

/**
 * A source that honours the hold: it gives the next chunk only once released (one chunk per turn)
 * and checks that by then everything given before has gone out (nothing queues behind a release).
 */
async function feed(t: ExecutionContext, fault: StreamFault, ctx: RecordingContext, chunks: Buffer[]): Promise<void> {
  let given = ctx.emitted().length;
  for (const chunk of chunks) {
    t.true(await until(() => !ctx.held), 'the source is released');
    t.is(ctx.emitted().length, given, 'nothing is left queued while the source is released');
    fault.data(chunk);
    given += chunk.length;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  fault.end();
}

const latency = (latencyMs: number, jitterMs: number): StreamFaultConfig => ({ type: 'latency', name: 'lag', latencyMs, jitterMs });
const bandwidth = (bytesPerSecond: number): StreamFaultConfig => ({ type: 'bandwidth', name: 'slow', bytesPerSecond });
const slicer = (averageSize: number, sizeVariation: number, delayMs: number): StreamFaultConfig => ({
  type: 'slicer',
  name: 'cut',
  averageSize,
  sizeVariation,
  delayMs,
});

test('latency: a later chunk with a shorter draw never overtakes; one hold for the wait; the end follows the data', async (t) => {
  // Draws 0.99 then 0: the first chunk waits about 54 ms, the second only 5 ms.
  const ctx = new RecordingContext([0.99, 0]);
  const fault = createStreamFault(latency(30, 25), ctx);
  const first = bytes(10, 0);
  const second = bytes(10, 10);
  fault.data(first);
  fault.data(second);
  fault.end();
  t.deepEqual(ctx.kinds(), ['hold'], 'nothing goes at once, the source is held');
  t.true(await until(() => ctx.count('finish') === 1));
  t.deepEqual(ctx.kinds(), ['hold', 'emit', 'emit', 'release', 'finish']);
  t.is(ctx.emits()[0], first);
  t.is(ctx.emits()[1], second);
  fault.dispose();
  assertBalanced(t, ctx);
});

test('latency: with a source that honours the hold, nothing queues beyond the chunk in hand, and all arrives in order', async (t) => {
  const ctx = new RecordingContext([0.1, 0.9, 0.5, 0, 0.7]);
  const fault = createStreamFault(latency(8, 6), ctx);
  const chunks = [0, 1, 2, 3, 4, 5].map((i) => bytes(7, i * 7));
  await feed(t, fault, ctx, chunks);
  t.true(await until(() => ctx.count('finish') === 1));
  t.deepEqual(ctx.emitted(), Buffer.concat(chunks));
  t.is(ctx.count('hold'), chunks.length, 'each chunk was waited for');
  t.is(ctx.kinds().at(-1), 'finish');
  fault.dispose();
  assertBalanced(t, ctx);
});

test('latency 0 without jitter passes chunks and the end at once, without holding', (t) => {
  const ctx = new RecordingContext();
  const fault = createStreamFault(latency(0, 0), ctx);
  const chunk = bytes(5);
  fault.data(chunk);
  fault.end();
  t.deepEqual(ctx.kinds(), ['emit', 'finish']);
  t.is(ctx.emits()[0], chunk);
});

test('bandwidth: a large chunk goes in slices of 100 ms worth, one at once then one per payment; the end after the last', async (t) => {
  const ctx = new RecordingContext();
  const fault = createStreamFault(bandwidth(10_000), ctx);
  const chunk = bytes(2500);
  fault.data(chunk);
  fault.end();
  t.deepEqual(ctx.kinds(), ['emit', 'hold'], 'the first slice goes at once, then the source is held');
  t.true(await until(() => ctx.count('finish') === 1));
  t.deepEqual(
    ctx.emits().map((piece) => piece.length),
    [1000, 1000, 500],
  );
  t.true(
    ctx.emits().every((piece) => piece.buffer === chunk.buffer),
    'slices are views, not copies',
  );
  t.deepEqual(ctx.emitted(), chunk);
  t.is(ctx.kinds().at(-1), 'finish');
  t.is(ctx.kinds().at(-2), 'release', 'the end waits for the last slice to be paid for');
  fault.dispose();
  assertBalanced(t, ctx);
});

test('bandwidth: emit then hold; a chunk read meanwhile waits its turn; with a source that honours the hold nothing queues', async (t) => {
  const ctx = new RecordingContext();
  const fault = createStreamFault(bandwidth(4000), ctx);
  const first = bytes(200, 0);
  const second = bytes(100, 200);
  fault.data(first);
  fault.data(second); // already read when the hold came
  t.deepEqual(ctx.kinds(), ['emit', 'hold']);
  t.true(await until(() => ctx.count('emit') === 2));
  t.is(ctx.emits()[1], second);
  const rest = [0, 1, 2, 3].map((i) => bytes(150, 300 + i * 150));
  await feed(t, fault, ctx, rest);
  t.true(await until(() => ctx.count('finish') === 1));
  t.deepEqual(ctx.emitted(), Buffer.concat([first, second, ...rest]));
  fault.dispose();
  assertBalanced(t, ctx);
});

test('slicer: pieces are drawn averageSize ± sizeVariation, views in order, with the source held between them', async (t) => {
  // Sizes 10 + (2r - 1) * 4, rounded: 6, 14, 10, 8, 12, then again.
  const ctx = new RecordingContext([0, 0.999, 0.5, 0.25, 0.75]);
  const fault = createStreamFault(slicer(10, 4, 5), ctx);
  const first = bytes(100, 0);
  const second = bytes(23, 100);
  fault.data(first);
  fault.data(second);
  fault.end();
  t.deepEqual(ctx.kinds(), ['emit', 'hold'], 'the first piece goes at once');
  t.true(await until(() => ctx.count('finish') === 1));
  const pieces = ctx.emits();
  t.deepEqual(ctx.emitted(), Buffer.concat([first, second]), 'the pieces put together are the input');
  const ofFirst = pieces.filter((piece) => piece.buffer === first.buffer);
  const ofSecond = pieces.filter((piece) => piece.buffer === second.buffer);
  t.is(ofFirst.length + ofSecond.length, pieces.length, 'every piece is a view of an input chunk');
  t.deepEqual(
    ofFirst.map((piece) => piece.length),
    [6, 14, 10, 8, 12, 6, 14, 10, 8, 12],
  );
  for (const [i, piece] of [...ofFirst.slice(0, -1), ...ofSecond.slice(0, -1)].entries()) t.true(piece.length >= 6 && piece.length <= 14, `piece ${i}`);
  t.true(ofSecond.at(-1)!.length <= 14, 'the last piece of a chunk is what is left');
  t.is(ctx.kinds().at(-1), 'finish');
  fault.dispose();
  assertBalanced(t, ctx);
});

test('slicer: a source that honours the hold gets the next read only after the last piece; delay 0 slices at once', async (t) => {
  const ctx = new RecordingContext([0.3, 0.8]);
  const fault = createStreamFault(slicer(4, 2, 1), ctx);
  // 1 ms is a real pause: the source is held after each piece.
  const chunks = [0, 1, 2].map((i) => bytes(13, i * 13));
  await feed(t, fault, ctx, chunks);
  t.true(await until(() => ctx.count('finish') === 1));
  t.deepEqual(ctx.emitted(), Buffer.concat(chunks));
  t.is(ctx.count('hold'), chunks.length, 'each chunk is sliced under one hold');
  t.true(ctx.count('emit') > chunks.length);
  fault.dispose();
  assertBalanced(t, ctx);

  const now = new RecordingContext([0, 0.999]);
  const instant = createStreamFault(slicer(3, 1, 0), now);
  instant.data(bytes(9));
  instant.end();
  t.deepEqual(now.kinds(), ['emit', 'emit', 'emit', 'emit', 'finish'], 'no timer, no hold');
  // Draws 2, 4, 2, then 4 of which 1 byte is left.
  t.deepEqual(
    now.emits().map((piece) => piece.length),
    [2, 4, 2, 1],
  );
});

test('slicer: a chunk given from inside emit (a synchronous source) keeps its place; dispose from inside emit stops the rest', (t) => {
  const ctx = new RecordingContext();
  const fault = createStreamFault(slicer(2, 0, 0), ctx);
  const later = bytes(3, 100);
  let fed = false;
  ctx.onEmit = () => {
    if (fed) return;
    fed = true;
    fault.data(later);
  };
  const first = bytes(5);
  fault.data(first);
  fault.end();
  t.deepEqual(ctx.emitted(), Buffer.concat([first, later]));
  t.is(ctx.kinds().at(-1), 'finish');

  const torn = new RecordingContext();
  const dying = createStreamFault(slicer(2, 0, 0), torn);
  torn.onEmit = () => dying.dispose();
  dying.data(bytes(6));
  dying.end();
  t.deepEqual(torn.kinds(), ['emit'], 'nothing after the dispose');
});

test('limit-data: exactly `bytes` bytes pass, the chunk over the limit is cut there, then the connection is closed once', (t) => {
  const ctx = new RecordingContext();
  const fault = createStreamFault({ type: 'limit-data', name: 'cap', bytes: 10 }, ctx);
  const third = bytes(4, 8);
  fault.data(bytes(4, 0));
  fault.data(bytes(4, 4));
  fault.data(third);
  fault.data(bytes(4, 12));
  fault.end();
  t.deepEqual(ctx.kinds(), ['emit', 'emit', 'emit', 'close']);
  t.is(ctx.emitted().length, 10);
  t.deepEqual(ctx.emitted(), bytes(10));
  t.is(ctx.emits()[2]!.buffer, third.buffer, 'the cut part is a view');
  const close = ctx.calls[3] as { kind: 'close'; error: ProxyError };
  t.true(close.error instanceof ProxyError);
  t.is(close.error.code, 'ERR_PROXY_ABORTED');
  t.regex(close.error.message, /^fault limit-data "cap": 10 bytes/);
});

test('limit-data: a limit at a chunk end closes at once; under the limit the end passes; 0 closes on the first chunk', (t) => {
  const exact = new RecordingContext();
  const atEnd = createStreamFault({ type: 'limit-data', name: 'cap', bytes: 8 }, exact);
  atEnd.data(bytes(8));
  t.deepEqual(exact.kinds(), ['emit', 'close']);
  t.is(exact.emits()[0]!.length, 8);

  const under = new RecordingContext();
  const roomy = createStreamFault({ type: 'limit-data', name: 'cap', bytes: 100 }, under);
  roomy.data(bytes(30));
  roomy.end();
  t.deepEqual(under.kinds(), ['emit', 'finish']);

  const none = new RecordingContext();
  const zero = createStreamFault({ type: 'limit-data', name: 'cap', bytes: 0 }, none);
  zero.data(Buffer.alloc(0));
  t.deepEqual(none.kinds(), [], 'an empty chunk carries nothing');
  zero.data(bytes(3));
  zero.data(bytes(3));
  t.deepEqual(none.kinds(), ['close']);
});

test('timeout: nothing is relayed (data dropped, end swallowed), then after afterMs the connection is closed once', async (t) => {
  const ctx = new RecordingContext();
  const fault = createStreamFault({ type: 'timeout', name: 'stall', afterMs: 40 }, ctx);
  fault.data(bytes(10));
  fault.data(bytes(10));
  fault.end();
  t.deepEqual(ctx.kinds(), []);
  t.true(await until(() => ctx.count('close') === 1));
  const close = ctx.calls[0] as { kind: 'close'; error: ProxyError };
  t.is(close.error.code, 'ERR_PROXY_ABORTED');
  t.regex(close.error.message, /^fault timeout "stall": nothing relayed for 40 ms/);
  fault.data(bytes(3));
  await sleep(60);
  t.deepEqual(ctx.kinds(), ['close'], 'one close, nothing emitted, no hold');
  fault.dispose();
});

test('timeout 0: drops everything and never closes, until dispose; nothing after', async (t) => {
  const ctx = new RecordingContext();
  const fault = createStreamFault({ type: 'timeout', name: 'stall', afterMs: 0 }, ctx);
  fault.data(bytes(10));
  fault.end();
  await sleep(80);
  t.deepEqual(ctx.kinds(), []);
  fault.dispose();
  fault.data(bytes(10));
  await sleep(20);
  t.deepEqual(ctx.kinds(), []);
});

test('reset: data and the end pass until afterMs from the start, then one reset, and nothing passes after', async (t) => {
  const ctx = new RecordingContext();
  const fault = createStreamFault({ type: 'reset', name: 'rst', afterMs: 30 }, ctx);
  const before = bytes(4);
  fault.data(before);
  t.deepEqual(ctx.kinds(), ['emit'], 'data passes at once');
  t.true(await until(() => ctx.count('reset') === 1));
  fault.data(bytes(4));
  fault.end();
  await sleep(50);
  t.deepEqual(ctx.kinds(), ['emit', 'reset']);
  t.is(ctx.emits()[0], before);
  fault.dispose();

  const ended = new RecordingContext();
  const early = createStreamFault({ type: 'reset', name: 'rst', afterMs: 0 }, ended);
  early.end();
  t.deepEqual(ended.kinds(), ['finish'], 'not reset from inside createStreamFault, the end passes');
  t.true(await until(() => ended.count('reset') === 1), 'afterMs 0 resets on the next turn');
  early.dispose();
});

test('slow-close: data passes at once, the end only after delayMs; 0 passes it at once', async (t) => {
  const ctx = new RecordingContext();
  const fault = createStreamFault({ type: 'slow-close', name: 'linger', delayMs: 30 }, ctx);
  fault.data(bytes(4));
  fault.end();
  fault.end();
  t.deepEqual(ctx.kinds(), ['emit'], 'the end is held');
  t.true(await until(() => ctx.count('finish') === 1));
  await sleep(40);
  t.deepEqual(ctx.kinds(), ['emit', 'finish']);
  fault.dispose();

  const now = new RecordingContext();
  const quick = createStreamFault({ type: 'slow-close', name: 'linger', delayMs: 0 }, now);
  quick.end();
  t.deepEqual(now.kinds(), ['finish']);
});

test('dispose stops every fault: no emit, finish, close or reset after it, and a held source is given back', async (t) => {
  const configs: StreamFaultConfig[] = [
    latency(20, 5),
    bandwidth(1000),
    slicer(2, 1, 15),
    { type: 'limit-data', name: 'cap', bytes: 4 },
    { type: 'timeout', name: 'stall', afterMs: 20 },
    { type: 'reset', name: 'rst', afterMs: 20 },
    { type: 'slow-close', name: 'linger', delayMs: 20 },
  ];
  const runs = configs.map((config) => {
    const ctx = new RecordingContext([0.2, 0.7]);
    const fault = createStreamFault(config, ctx);
    fault.data(bytes(3, 0));
    fault.data(bytes(300, 3));
    fault.end();
    fault.dispose();
    return { config, ctx, fault, before: ctx.calls.length };
  });
  await sleep(100);
  for (const { config, ctx, fault, before } of runs) {
    fault.data(bytes(5));
    fault.end();
    fault.dispose();
    t.is(ctx.calls.length, before, `${config.type}: nothing after dispose`);
    assertBalanced(t, ctx);
  }
  await sleep(50);
  for (const { config, ctx, before } of runs) t.is(ctx.calls.length, before, `${config.type}: no timer left`);
});

test('createStreamFault refuses an attribute out of range or an unknown type with ERR_PROXY_CONFIG naming them', (t) => {
  const ctx = new RecordingContext();
  const bad: [StreamFaultConfig, RegExp][] = [
    [bandwidth(0), /bandwidth "slow": bytesPerSecond must be a finite number greater than 0, got 0/],
    [slicer(0, 0, 1), /averageSize must be a finite number at least 1/],
    [latency(Number.NaN, 0), /latencyMs .* got NaN/],
    [latency(10, -1), /jitterMs .* got -1/],
    [{ type: 'reset', name: 'rst', afterMs: Infinity }, /afterMs .* got Infinity/],
    [{ type: 'explode', name: 'boom' } as unknown as StreamFaultConfig, /fault "boom": unknown stream fault type explode/],
  ];
  for (const [config, message] of bad) {
    const error = t.throws(() => createStreamFault(config, ctx), { instanceOf: ProxyError, message });
    t.is(error.code, 'ERR_PROXY_CONFIG');
  }
  t.deepEqual(ctx.kinds(), []);
});
