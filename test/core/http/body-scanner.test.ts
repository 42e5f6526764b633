import test from 'ava';
import { ProxyError } from '../../../src/core/errors.js';
import { BodyScanner } from '../../../src/core/http/body-scanner.js';
import { badResponse } from '../../../src/core/http/response-framing.js';

/** One scan: what it returned and the range it said to pass on. */
const step = (scanner: BodyScanner, chunk: Buffer, offset: number) => {
  const next = scanner.scan(chunk, offset);
  return { next, emit: [scanner.emitStart, scanner.emitEnd], done: scanner.done };
};

test('length: consumes up to the length across chunks, then is done', (t) => {
  const scanner = new BodyScanner(1024);
  scanner.start({ kind: 'length', length: 5 });
  t.false(scanner.done);
  t.deepEqual(step(scanner, Buffer.from('HEADabc'), 4), { next: 7, emit: [4, 7], done: false });
  t.deepEqual(step(scanner, Buffer.from('deNEXT'), 0), { next: 2, emit: [0, 2], done: true });
  t.false(scanner.finish(), 'EOF does not end a length-delimited body');
});

test('chunked as sent: the wire bytes up to the end of the body', (t) => {
  const scanner = new BodyScanner(1024);
  scanner.start({ kind: 'chunked' });
  const wire = '3\r\nabc\r\n0\r\n\r\n';
  t.deepEqual(step(scanner, Buffer.from(wire + 'NEXT'), 0), { next: wire.length, emit: [0, wire.length], done: true });
});

test('chunked de-chunked: one payload run per call, then the rest of the framing', (t) => {
  const scanner = new BodyScanner(1024);
  scanner.start({ kind: 'chunked' }, true);
  const chunk = Buffer.from('3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT');
  t.deepEqual(step(scanner, chunk, 0), { next: 6, emit: [3, 6], done: false });
  t.deepEqual(step(scanner, chunk, 6), { next: 13, emit: [11, 13], done: false });
  const end = step(scanner, chunk, 13);
  t.is(end.next, chunk.length - 4);
  t.is(end.emit[0], end.emit[1], 'nothing to pass on');
  t.true(end.done);
});

test('close-delimited: everything, until finish ends it', (t) => {
  const scanner = new BodyScanner(1024);
  scanner.start({ kind: 'close' });
  t.deepEqual(step(scanner, Buffer.from('HEADbody'), 4), { next: 8, emit: [4, 8], done: false });
  t.true(scanner.finish());
  t.true(scanner.done);
});

test('one scanner serves body after body, chunked state starting over', (t) => {
  const scanner = new BodyScanner(1024);
  scanner.start({ kind: 'chunked' });
  t.false(step(scanner, Buffer.from('5\r\nab'), 0).done);
  scanner.start({ kind: 'length', length: 2 });
  t.deepEqual(step(scanner, Buffer.from('xy'), 0), { next: 2, emit: [0, 2], done: true });
  scanner.start({ kind: 'chunked' });
  const wire = '0\r\n\r\n';
  t.deepEqual(step(scanner, Buffer.from(wire), 0), { next: wire.length, emit: [0, wire.length], done: true });
});

test('malformed chunked framing throws the error of the given factory', (t) => {
  const request = new BodyScanner(1024);
  request.start({ kind: 'chunked' });
  t.is(t.throws(() => request.scan(Buffer.from('zz\r\n'), 0), { instanceOf: ProxyError })?.code, 'ERR_PROXY_BAD_REQUEST');
  const response = new BodyScanner(1024, badResponse);
  response.start({ kind: 'chunked' }, true);
  t.is(t.throws(() => response.scan(Buffer.from('zz\r\n'), 0), { instanceOf: ProxyError })?.code, 'ERR_PROXY_BAD_RESPONSE');
});
