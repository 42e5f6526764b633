import test from 'ava';
import { ProxyError } from '../../../src/core/errors.js';
import { ChunkedScanner } from '../../../src/core/http/chunked-scanner.js';

/**
 * Scans each piece with scanPayload, called again from where it stopped until the piece is used
 * up or the body is done; returns the payload, where each piece's scanning ended, and done.
 */
function decode(pieces: string[]): { payload: string; ends: number[]; done: boolean; views: boolean } {
  const scanner = new ChunkedScanner(1024);
  const parts: Buffer[] = [];
  const ends: number[] = [];
  let views = true;
  for (const piece of pieces) {
    const chunk = Buffer.from(piece, 'latin1');
    let at = 0;
    for (let calls = 0; at < chunk.length && !scanner.done && calls <= chunk.length; calls++) {
      at = scanner.scanPayload(chunk, at);
      if (scanner.payloadEnd === scanner.payloadStart) continue;
      const part = chunk.subarray(scanner.payloadStart, scanner.payloadEnd);
      views &&= part.buffer === chunk.buffer && scanner.payloadEnd > scanner.payloadStart && scanner.payloadEnd === at;
      parts.push(part);
    }
    ends.push(at);
  }
  return { payload: Buffer.concat(parts).toString('latin1'), ends, done: scanner.done, views };
}

const wire = '4;ext="x;y"\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: t\r\n\r\n';

test('scanPayload reports the payload ranges only, and scanning ends where it did', (t) => {
  const result = decode([wire + 'NEXT']);
  t.is(result.payload, 'Wikipedia');
  t.deepEqual(result.ends, [wire.length]);
  t.true(result.done);
  t.true(result.views, 'non-empty sub-arrays of the scanned chunk, each ending where the call returned');
});

test('scanPayload across byte-by-byte pieces gives the same payload', (t) => {
  const result = decode([...wire]);
  t.is(result.payload, 'Wikipedia');
  t.true(result.done);
  t.deepEqual(result.ends, Array(wire.length).fill(1));
});

test('scanPayload from an offset reports ranges relative to the chunk, one run per call', (t) => {
  const scanner = new ChunkedScanner(1024);
  const chunk = Buffer.from('HEAD3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT');
  t.is(scanner.scanPayload(chunk, 4), 10);
  t.deepEqual([scanner.payloadStart, scanner.payloadEnd], [7, 10]);
  t.is(scanner.scanPayload(chunk, 10), 17);
  t.deepEqual([scanner.payloadStart, scanner.payloadEnd], [15, 17]);
  t.is(scanner.scanPayload(chunk, 17), chunk.length - 4, 'no run left: scans to the end of the body');
  t.is(scanner.payloadEnd, scanner.payloadStart);
  t.true(scanner.done);
});

test('scan passes over the whole body and ends where scanPayload does', (t) => {
  const scanner = new ChunkedScanner(1024);
  t.is(scanner.scan(Buffer.from(wire + 'X'), 0), wire.length);
  t.true(scanner.done);
});

test('reset starts a new body', (t) => {
  const scanner = new ChunkedScanner(8);
  t.is(scanner.scan(Buffer.from('0\r\nAB: 1'), 0), 8, 'stopped inside a trailer line');
  scanner.reset();
  t.false(scanner.done);
  const next = Buffer.from('0\r\nT: 12\r\n\r\n');
  t.is(scanner.scan(next, 0), next.length, 'the line and the trailer count start over too');
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
