import test from 'ava';
import { ProxyError } from '../../../src/core/errors.js';
import type { ProxyEvent } from '../../../src/core/events.js';
import { parseRequestHead } from '../../../src/core/http/head-parser.js';
import { RequestParser } from '../../../src/core/http/request-parser.js';

/** Feeds the input in the given pieces; returns the events, or the error code thrown. */
function parse(pieces: (string | Buffer)[], maxHeaderBytes = 65536): { events: ProxyEvent[]; error?: string; message?: string } {
  const events: ProxyEvent[] = [];
  const parser = new RequestParser({ maxHeaderBytes }, (event) => events.push(event));
  try {
    for (const piece of pieces) parser.push(Buffer.isBuffer(piece) ? piece : Buffer.from(piece, 'latin1'));
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    return { events, error: error.code, message: error.message };
  }
  return { events };
}

const kinds = (events: ProxyEvent[]) => events.map((event) => event.kind);
const body = (events: ProxyEvent[]) => Buffer.concat(events.flatMap((event) => (event.kind === 'data' ? [event.chunk] : []))).toString('latin1');

test('a GET without body is a head and a message end', (t) => {
  const { events, error } = parse(['GET http://a/ HTTP/1.1\r\nHost: a\r\nX-Case: Kept\r\n\r\n']);
  t.is(error, undefined);
  t.deepEqual(kinds(events), ['request-head', 'message-end']);
  const head = events[0]!.kind === 'request-head' ? events[0]!.head : undefined;
  t.deepEqual(head, {
    method: 'GET',
    target: 'http://a/',
    version: '1.1',
    headers: [
      ['Host', 'a'],
      ['X-Case', 'Kept'],
    ],
  });
});

test('a head split byte by byte parses the same', (t) => {
  const text = 'GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n';
  const { events } = parse([...text]);
  t.deepEqual(kinds(events), ['request-head', 'message-end']);
});

test('empty lines before the request line are ignored', (t) => {
  t.deepEqual(kinds(parse(['\r\n\r\nGET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n']).events), ['request-head', 'message-end']);
  t.deepEqual(kinds(parse(['\r', '\nGET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n']).events), ['request-head', 'message-end']);
});

test('a Content-Length body is emitted as sub-arrays and followed by the next request', (t) => {
  const { events } = parse(['POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel', 'loGET http://b/ HTTP/1.1\r\nHost: b\r\n\r\n']);
  t.deepEqual(kinds(events), ['request-head', 'data', 'data', 'message-end', 'request-head', 'message-end']);
  t.is(body(events), 'hello');
});

test('Content-Length: 0 has no body', (t) => {
  t.deepEqual(kinds(parse(['POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n']).events), ['request-head', 'message-end']);
});

test('identical repeated Content-Length values are accepted', (t) => {
  const { events, error } = parse(['POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok']);
  t.is(error, undefined);
  t.is(body(events), 'ok');
});

test('a chunked body passes through raw, with extensions and trailers, and ends the message', (t) => {
  const wire = '4;name=value;q="a;b"\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n';
  const { events, error } = parse([
    'POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n' + wire + 'GET http://b/ HTTP/1.1\r\nHost: b\r\n\r\n',
  ]);
  t.is(error, undefined);
  t.deepEqual(kinds(events), ['request-head', 'data', 'message-end', 'request-head', 'message-end']);
  t.is(body(events), wire);
});

test('a chunked body split into single bytes still finds its end', (t) => {
  const wire = 'a\r\n0123456789\r\n0\r\n\r\n';
  const { events, error } = parse([
    'POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
    ...wire,
    'GET http://b/ HTTP/1.1\r\nHost: b\r\n\r\n',
  ]);
  t.is(error, undefined);
  t.is(body(events), wire);
  t.deepEqual(kinds(events).slice(-3), ['message-end', 'request-head', 'message-end']);
});

test('CONNECT is a head and a message end; later bytes wait for the decision, then are raw tunnel data (even bytes that look like HTTP)', (t) => {
  const events: ProxyEvent[] = [];
  const waited: string[] = [];
  const parser = new RequestParser({ maxHeaderBytes: 65536, onUpgradeWait: (exchange) => waited.push(exchange.request.method) }, (event) => events.push(event));
  parser.push(Buffer.from('CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03\x01', 'latin1'));
  parser.push(Buffer.from('GET / HTTP/1.1\r\n\r\n', 'latin1'));
  t.deepEqual(waited, ['CONNECT']);
  t.deepEqual(kinds(events), ['request-head', 'message-end'], 'nothing after the head until the CONNECT is decided');
  t.false(parser.isTunnel);
  parser.resolveUpgrade(true);
  t.true(parser.isTunnel);
  t.deepEqual(kinds(events), ['request-head', 'message-end', 'data', 'data']);
  t.is(body(events), '\x16\x03\x01GET / HTTP/1.1\r\n\r\n');
});

test('a CONNECT with Content-Length: 0 is a CONNECT like any other', (t) => {
  const { events, error } = parse(['CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 0\r\n\r\n']);
  t.is(error, undefined);
  t.deepEqual(kinds(events), ['request-head', 'message-end']);
});

test('a refused CONNECT leaves the connection HTTP: the bytes after it are the next request', (t) => {
  const events: ProxyEvent[] = [];
  const parser = new RequestParser({ maxHeaderBytes: 65536 }, (event) => events.push(event));
  parser.push(
    Buffer.from('CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nCONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nProxy-Authorization: Basic eDp5\r\n\r\n', 'latin1'),
  );
  t.deepEqual(kinds(events), ['request-head', 'message-end']);
  parser.resolveUpgrade(false);
  t.deepEqual(kinds(events), ['request-head', 'message-end', 'request-head', 'message-end']);
  const retry = events[2]!.kind === 'request-head' ? events[2]!.head : undefined;
  t.deepEqual(retry?.headers.at(-1), ['Proxy-Authorization', 'Basic eDp5']);
});

test('HTTP/1.0 without Host is accepted', (t) => {
  const { events, error } = parse(['GET http://a/ HTTP/1.0\r\n\r\n']);
  t.is(error, undefined);
  t.is(events[0]!.kind === 'request-head' && events[0]!.head.version, '1.0');
});

const malformed: [string, string, string][] = [
  ['a CONNECT announcing content', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\nhello', 'a CONNECT request with content'],
  ['a CONNECT with Transfer-Encoding', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nTransfer-Encoding: chunked\r\n\r\n', 'a CONNECT request with content'],
  ['missing Host in HTTP/1.1', 'GET http://a/ HTTP/1.1\r\n\r\n', 'missing Host'],
  ['two Host headers', 'GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'more than one Host'],
  ['request line with two spaces', 'GET  http://a/ HTTP/1.1\r\nHost: a\r\n\r\n', 'malformed request line'],
  ['request line without version', 'GET http://a/\r\nHost: a\r\n\r\n', 'malformed request line'],
  ['lower-case protocol name', 'GET http://a/ http/1.1\r\nHost: a\r\n\r\n', 'malformed request line'],
  ['HTTP/2.0 request line', 'GET http://a/ HTTP/2.0\r\nHost: a\r\n\r\n', 'unsupported HTTP version'],
  ['HTTP/1.2 request line', 'GET http://a/ HTTP/1.2\r\nHost: a\r\n\r\n', 'unsupported HTTP version'],
  ['method with a separator', 'GE(T http://a/ HTTP/1.1\r\nHost: a\r\n\r\n', 'malformed method'],
  ['control character in target', 'GET http://a/\x01 HTTP/1.1\r\nHost: a\r\n\r\n', 'malformed request target'],
  ['whitespace before the colon', 'GET http://a/ HTTP/1.1\r\nHost : a\r\n\r\n', 'whitespace before a header colon'],
  ['obs-fold', 'GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n', 'obsolete line folding'],
  ['header without colon', 'GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n', 'without a colon'],
  ['empty header name', 'GET http://a/ HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n', 'malformed header name'],
  ['non-token header name', 'GET http://a/ HTTP/1.1\r\nHost: a\r\nX(A): x\r\n\r\n', 'malformed header name'],
  ['NUL in a value', 'GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n', 'invalid character'],
  ['bare CR in a value', 'GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n', 'bare CR'],
  ['bare LF line ending', 'GET http://a/ HTTP/1.1\nHost: a\r\n\r\n', 'bare LF'],
  ['bare LF head end', 'GET http://a/ HTTP/1.1\r\nHost: a\n\n', 'bare LF'],
  ['CL with TE', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 'both Content-Length and Transfer-Encoding'],
  ['differing CLs', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n', 'conflicting Content-Length'],
  ['differing CLs in one field', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n', 'conflicting Content-Length'],
  ['negative CL', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 'invalid Content-Length'],
  ['signed CL', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n', 'invalid Content-Length'],
  ['hex CL', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\n', 'invalid Content-Length'],
  ['empty CL', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n', 'invalid Content-Length'],
  ['chunked not final', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'unsupported Transfer-Encoding'],
  ['gzip then chunked', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'unsupported Transfer-Encoding'],
  ['chunked twice', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 'unsupported Transfer-Encoding'],
  ['obfuscated chunked', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n', 'unsupported Transfer-Encoding'],
  ['empty TE', 'POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n', 'unsupported Transfer-Encoding'],
  ['TE in HTTP/1.0', 'POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 'HTTP/1.0'],
];

for (const [title, input, expected] of malformed) {
  test(`400: ${title}`, (t) => {
    const result = parse([input]);
    t.is(result.error, 'ERR_PROXY_BAD_REQUEST');
    t.true(result.message?.includes(expected), result.message);
    t.deepEqual(result.events, [], 'nothing of a malformed message is emitted');
  });
}

const chunkedHead = 'POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
const badChunks: [string, string, string][] = [
  ['non-hex size', 'g\r\n', 'malformed chunk size'],
  ['empty size', '\r\n', 'malformed chunk size'],
  ['size with leading space', ' 5\r\nhello\r\n', 'malformed chunk size'],
  ['negative size', '-5\r\n', 'malformed chunk size'],
  ['size over 16 hex digits', '10000000000000000\r\n', 'chunk size too large'],
  ['size past 2^53', 'fffffffffffffff\r\n', 'chunk size too large'],
  ['extension without name', '5;\r\n', 'malformed chunk extension'],
  ['extension with bad value', '5;a=b c\r\n', 'malformed chunk extension'],
  ['extension with unterminated quote', '5;a="b\r\n', 'malformed chunk extension'],
  ['bare LF after size', '5\nhello\r\n', 'bare LF'],
  ['bare CR after size', '5\rhello', 'bare CR'],
  ['data longer than its size', '3\r\nhello\r\n', 'not followed by CRLF'],
  ['data followed by LF only', '5\r\nhello\n', 'not followed by CRLF'],
  ['malformed trailer name', '0\r\nBad Trailer: x\r\n\r\n', 'malformed header name'],
  ['trailer with space before colon', '0\r\nX-T : x\r\n\r\n', 'whitespace before a header colon'],
];

for (const [title, input, expected] of badChunks) {
  test(`400 in a chunked body: ${title}`, (t) => {
    const result = parse([chunkedHead + input]);
    t.is(result.error, 'ERR_PROXY_BAD_REQUEST');
    t.true(result.message?.includes(expected), result.message);
  });
}

test('a chunk-size line longer than 4 KiB is refused', (t) => {
  const result = parse([chunkedHead + '5;' + 'a'.repeat(5000)]);
  t.is(result.message, 'chunk line too long');
});

test('a trailer section larger than the head limit is refused', (t) => {
  const result = parse([chunkedHead + '0\r\n' + `X-A: ${'a'.repeat(2000)}\r\n`], 1024);
  t.is(result.message, 'trailer section too large');
});

test('a head over the limit is refused with 431, whether complete or not', (t) => {
  const big = 'GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A: ' + 'a'.repeat(2000);
  t.is(parse([big], 1024).error, 'ERR_PROXY_HEADERS_TOO_LARGE');
  t.is(parse([big + '\r\n\r\n'], 1024).error, 'ERR_PROXY_HEADERS_TOO_LARGE');
  t.is(parse([big.slice(0, 1000), big.slice(1000)], 1024).error, 'ERR_PROXY_HEADERS_TOO_LARGE');
});

test('a head both over the limit and with a bare LF gets the same error however it is split', (t) => {
  // Found by the split-invariance property: one chunk gave 431, byte by byte gave 400.
  const within = 'CONNECT a:443 HTTP/1.1\nHost: \r\n\r\n'; // 33 bytes, a bare LF at 22
  // An unfinished head with a bare LF only past the limit: one chunk gave 400, two gave 431.
  const past = 'GET http://a/ HTTP/1.1\r\nX-A: ' + 'a'.repeat(20) + '\nb';
  for (const [input, code] of [
    [within, 'ERR_PROXY_BAD_REQUEST'],
    [past, 'ERR_PROXY_HEADERS_TOO_LARGE'],
  ] as const) {
    t.is(parse([input], 32).error, code, JSON.stringify(input));
    t.is(parse([...input], 32).error, code, JSON.stringify(input));
    t.is(parse([input.slice(0, 33), input.slice(33)], 32).error, code, JSON.stringify(input));
  }
});

test('a head exactly at the limit is accepted', (t) => {
  const start = 'GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A: ';
  const head = start + 'a'.repeat(1024 - start.length - 4) + '\r\n\r\n';
  t.is(Buffer.byteLength(head), 1024);
  t.is(parse([head], 1024).error, undefined);
});

test('inHead and inBody report where the parser stopped', (t) => {
  const parser = new RequestParser({ maxHeaderBytes: 65536 }, () => {});
  t.false(parser.inHead);
  parser.push(Buffer.from('POST http://a/ HTTP/1.1\r\nHost: a\r\n'));
  t.true(parser.inHead);
  parser.push(Buffer.from('Content-Length: 4\r\n\r\nab'));
  t.false(parser.inHead);
  t.true(parser.inBody);
  parser.push(Buffer.from('cd'));
  t.false(parser.inBody);
});

test('the request line read by position agrees with the full check, edge by edge', (t) => {
  const ok = (line: string) => parseRequestHead(line);
  t.deepEqual(ok('GET http://a/ HTTP/1.1'), { method: 'GET', target: 'http://a/', version: '1.1', headers: [] });
  t.deepEqual(ok('M-SEARCH * HTTP/1.0'), { method: 'M-SEARCH', target: '*', version: '1.0', headers: [] });
  const refused: [string, string][] = [
    ['GET  HTTP/1.1', 'malformed request line'],
    ['GET /a b HTTP/1.1', 'malformed request line'],
    ['G@T / HTTP/1.1', 'malformed method'],
    ['GET / HTTP/1.2', 'unsupported HTTP version 1.2'],
    [' / HTTP/1.1', 'malformed request line'],
    ['GET /\x7f HTTP/1.1', 'malformed request target'],
    ['GET / xHTTP/1.1', 'malformed request line'],
  ];
  for (const [line, message] of refused) {
    const error = t.throws(() => parseRequestHead(line), { instanceOf: ProxyError }, line);
    t.is(error?.message, message, line);
  }
});
