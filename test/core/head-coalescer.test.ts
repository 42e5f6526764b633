// HeadCoalescer: a head goes out joined to the body bytes that follow it in the same run, and is
// never lost or reordered when none follow.
import test from 'ava';
import { PassThrough, type Writable } from 'node:stream';
import { HeadCoalescer } from '../../src/core/sink.js';

function recorder() {
  const writes: { socket: Writable; text: string }[] = [];
  const coalescer = new HeadCoalescer((socket, chunk) => void writes.push({ socket, text: chunk.toString('latin1') }));
  return { writes, coalescer };
}

test('a head and the body bytes of the same run are one write', (t) => {
  const { writes, coalescer } = recorder();
  const socket = new PassThrough();
  coalescer.hold(socket, Buffer.from('HEAD|'));
  coalescer.data(socket, Buffer.from('body'));
  coalescer.data(socket, Buffer.from('more'));
  t.deepEqual(
    writes.map((write) => write.text),
    ['HEAD|body', 'more'],
  );
});

test('a head with no body is written at message end, or when the run ends', async (t) => {
  const { writes, coalescer } = recorder();
  const socket = new PassThrough();
  coalescer.hold(socket, Buffer.from('HEAD-1|'));
  coalescer.flush();
  t.deepEqual(
    writes.map((write) => write.text),
    ['HEAD-1|'],
  );
  coalescer.hold(socket, Buffer.from('HEAD-2|'));
  t.is(writes.length, 1, 'held during the run');
  await Promise.resolve();
  t.deepEqual(
    writes.map((write) => write.text),
    ['HEAD-1|', 'HEAD-2|'],
  );
});

test('an interim head and the final head join; a head for another socket flushes the first', (t) => {
  const { writes, coalescer } = recorder();
  const a = new PassThrough();
  const b = new PassThrough();
  coalescer.hold(a, Buffer.from('100|'));
  coalescer.hold(a, Buffer.from('200|'));
  coalescer.hold(b, Buffer.from('B|'));
  coalescer.data(b, Buffer.from('b-body'));
  t.deepEqual(
    writes.map((write) => [write.socket === a ? 'a' : 'b', write.text]),
    [
      ['a', '100|200|'],
      ['b', 'B|b-body'],
    ],
  );
});

test('a large body chunk is written after the head, not copied behind it', (t) => {
  const { writes, coalescer } = recorder();
  const socket = new PassThrough();
  const big = Buffer.alloc(64 * 1024, 'x');
  coalescer.hold(socket, Buffer.from('HEAD|'));
  coalescer.data(socket, big);
  t.deepEqual(
    writes.map((write) => write.text.length),
    [5, big.length],
  );
});
