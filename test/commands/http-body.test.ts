// Captured bodies back to their content: chunk framing, content codings, text or base64.
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import test from 'ava';
import { bodyContent, dechunk } from '../../src/commands/http-body.js';

const b64 = (data: Buffer | string) => Buffer.from(data).toString('base64');

test('dechunk joins the chunks, drops extensions and trailers, and says whether the last chunk came', (t) => {
  const whole = dechunk(Buffer.from('5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n'));
  t.deepEqual([whole.data.toString(), whole.complete], ['hello world', true]);
  const cut = dechunk(Buffer.from('5\r\nhello\r\n6\r\n wor'));
  t.deepEqual([cut.data.toString(), cut.complete], ['hello wor', false]);
  const malformed = dechunk(Buffer.from('zz\r\nhello\r\n0\r\n\r\n'));
  t.deepEqual([malformed.data.length, malformed.complete], [0, false]);
});

test('content codings are undone when the whole body was captured: gzip, zlib and raw deflate, br, and two in a row', (t) => {
  const text = 'x'.repeat(500);
  const json = [['Content-Type', 'application/json']] as [string, string][];
  for (const [coding, wire] of [
    ['gzip', gzipSync(text)],
    ['deflate', deflateSync(text)],
    ['deflate', deflateRawSync(text)],
    ['br', brotliCompressSync(text)],
    ['deflate, gzip', gzipSync(deflateSync(text))],
  ] as const) {
    const content = bodyContent({ base64: b64(wire), truncated: false }, [...json, ['Content-Encoding', coding]]);
    t.is(content.text, text, coding);
    t.is(content.size, 500, coding);
    t.is(content.wireSize, wire.length, coding);
    t.is(content.note, undefined, coding);
  }
});

test('what cannot be undone stays as captured, in base64, with a note', (t) => {
  const gzip = gzipSync('hello');
  const cut = bodyContent({ base64: b64(gzip.subarray(0, 8)), truncated: true }, [
    ['Content-Type', 'text/plain'],
    ['Content-Encoding', 'gzip'],
  ]);
  t.is(cut.encoding, 'base64');
  t.is(cut.note, 'gzip not undone: the body is incomplete');
  const unknown = bodyContent({ base64: b64('abc'), truncated: false }, [
    ['Content-Type', 'text/plain'],
    ['Content-Encoding', 'zstd'],
  ]);
  t.deepEqual([unknown.text, unknown.encoding, unknown.note], [b64('abc'), 'base64', 'zstd not undone: unknown coding']);
  const corrupt = bodyContent({ base64: b64('not gzip at all'), truncated: false }, [['Content-Encoding', 'gzip']]);
  t.regex(corrupt.note ?? '', /^gzip not undone: /);
  const chunkedCut = bodyContent({ base64: b64('5\r\nhello\r\n'), truncated: false }, [['Transfer-Encoding', 'chunked']]);
  t.is(chunkedCut.note, 'chunked framing cut short');
});

test('text only for a textual media type in UTF-8; a prefix cut inside a character keeps the whole characters', (t) => {
  const plain = bodyContent({ base64: b64('héllo'), truncated: false }, [['Content-Type', 'text/plain; charset=utf-8']]);
  t.deepEqual([plain.text, plain.encoding], ['héllo', undefined]);
  const binary = bodyContent({ base64: b64(Buffer.from([0xff, 0xfe, 0x00])), truncated: false }, [['Content-Type', 'text/plain']]);
  t.is(binary.encoding, 'base64');
  const image = bodyContent({ base64: b64('GIF89a'), truncated: false }, [['Content-Type', 'image/gif']]);
  t.deepEqual([image.text, image.encoding], [b64('GIF89a'), 'base64']);
  const untyped = bodyContent({ base64: b64('{}'), truncated: false }, []);
  t.is(untyped.encoding, 'base64');
  for (const type of ['application/json', 'application/problem+json', 'image/svg+xml', 'application/javascript', 'application/x-www-form-urlencoded']) {
    t.is(bodyContent({ base64: b64('a=1'), truncated: false }, [['Content-Type', type]]).text, 'a=1', type);
  }
  const prefix = Buffer.from('ab€').subarray(0, 4); // '€' is 3 bytes: cut after its first
  const cut = bodyContent({ base64: b64(prefix), truncated: true }, [['Content-Type', 'text/plain']]);
  t.deepEqual([cut.text, cut.encoding, cut.truncated], ['ab', undefined, true]);
});
