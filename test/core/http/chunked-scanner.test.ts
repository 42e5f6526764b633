import test from 'ava';
import { ProxyError } from '../../../src/core/errors.js';
import { ChunkedScanner } from '../../../src/core/http/chunked-scanner.js';

/** Scans the pieces with a payload callback; returns the payload, the offsets returned, and done. */
function decode(pieces: string[]): { payload: string; ends: number[]; done: boolean; views: boolean } {
  const scanner = new ChunkedScanner(1024);
  const parts: Buffer[] = [];
  const ends: number[] = [];
  let views = true;
  for (const piece of pieces) {
    const chunk = Buffer.from(piece, 'latin1');
    ends.push(
      scanner.scan(chunk, 0, (start, end) => {
        const part = chunk.subarray(start, end);
        views &&= part.buffer === chunk.buffer && end > start;
        parts.push(part);
      }),
    );
  }
  return { payload: Buffer.concat(parts).toString('latin1'), ends, done: scanner.done, views };
}

const wire = '4;ext="x;y"\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: t\r\n\r\n';

test('onPayload reports the payload ranges only, and scanning ends where it did', (t) => {
  const result = decode([wire + 'NEXT']);
  t.is(result.payload, 'Wikipedia');
  t.deepEqual(result.ends, [wire.length]);
  t.true(result.done);
  t.true(result.views, 'non-empty sub-arrays of the scanned chunk');
});

test('onPayload across byte-by-byte pieces gives the same payload', (t) => {
  const result = decode([...wire]);
  t.is(result.payload, 'Wikipedia');
  t.true(result.done);
  t.deepEqual(result.ends, Array(wire.length).fill(1));
});

test('scan from an offset reports ranges relative to the chunk', (t) => {
  const scanner = new ChunkedScanner(1024);
  const chunk = Buffer.from('HEAD3\r\nabc\r\n0\r\n\r\n');
  const ranges: [number, number][] = [];
  t.is(scanner.scan(chunk, 4, (start, end) => ranges.push([start, end])), chunk.length);
  t.deepEqual(ranges, [[7, 10]]);
});

test('without onPayload, scan behaves as before', (t) => {
  const scanner = new ChunkedScanner(1024);
  t.is(scanner.scan(Buffer.from(wire + 'X'), 0), wire.length);
  t.true(scanner.done);
});

test('errors are 400 by default and built by the given factory otherwise', (t) => {
  const bad = Buffer.from('0\r\nX-T : x\r\n\r\n');
  const plain = t.throws(() => new ChunkedScanner(1024).scan(bad, 0), { instanceOf: ProxyError });
  t.is(plain?.code, 'ERR_PROXY_BAD_REQUEST');
  const fail = (message: string) => new ProxyError('ERR_PROXY_BAD_RESPONSE', message);
  const custom = t.throws(() => new ChunkedScanner(1024, fail).scan(bad, 0), { instanceOf: ProxyError });
  t.is(custom?.code, 'ERR_PROXY_BAD_RESPONSE');
  t.is(custom?.message, 'whitespace before a header colon');
  const size = t.throws(() => new ChunkedScanner(1024, fail).scan(Buffer.from('zz\r\n'), 0), { instanceOf: ProxyError });
  t.is(size?.code, 'ERR_PROXY_BAD_RESPONSE');
  t.is(size?.message, 'malformed chunk size');
});
