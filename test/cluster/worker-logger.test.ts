import { PassThrough } from 'node:stream';
import test from 'ava';
import { WorkerLogger } from '../../src/cluster/worker-logger.js';
import { flushLogs, StreamLogger } from '../../src/core/logger.js';
import { pollUntil } from '../helpers/wire.js';

test('every record of a worker carries its id, beside the fields it had', (t) => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const logger = new WorkerLogger(new StreamLogger(out), 3);
  logger.info('plain');
  logger.warn('with fields', { pid: 42 });
  logger.error('overridden', { worker: 'kept last' });
  flushLogs(); // lines of one turn go out in one write
  const lines = text.split(/(?<=\n)/);
  t.regex(lines[0]!, / info plain \{"worker":3\}\n$/);
  t.regex(lines[1]!, / warn with fields \{"worker":3,"pid":42\}\n$/);
  t.regex(lines[2]!, / error overridden \{"worker":"kept last"\}\n$/);
});

test('StreamLogger writes the lines of one turn in one write, in order, across loggers on the same stream', async (t) => {
  const out = new PassThrough();
  const writes: string[] = [];
  out.on('data', (chunk: Buffer) => writes.push(chunk.toString()));
  const first = new StreamLogger(out);
  const second = new StreamLogger(out);
  first.info('one');
  second.warn('two');
  first.error('three');
  t.deepEqual(writes, [], 'nothing written before the end of the turn');
  await new Promise((resolve) => setImmediate(resolve));
  t.is(writes.length, 1);
  t.regex(writes[0]!, /^\S+ info one\n\S+ warn two\n\S+ error three\n$/);
  const big = 'x'.repeat(70 * 1024);
  first.info(big);
  t.is(writes.length, 2, 'a batch over 64 KiB goes out at once');
});

test('StreamLogger: lines soon after a write wait for the gap between writes, then go out together, none lost', async (t) => {
  const out = new PassThrough();
  const writes: string[] = [];
  out.on('data', (chunk: Buffer) => writes.push(chunk.toString()));
  const logger = new StreamLogger(out);
  logger.info('first');
  await new Promise((resolve) => setImmediate(resolve));
  t.is(writes.length, 1, 'a quiet logger writes at the end of the turn');
  logger.info('second');
  logger.info('third');
  t.true(await pollUntil(() => writes.length === 2), 'written once the gap is over, though no line follows');
  t.regex(writes[1]!, /^\S+ info second\n\S+ info third\n$/);
});
