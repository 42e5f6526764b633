import test from 'ava';
import { ProxyError } from '../../../src/core/errors.js';
import { parseResponseHead, responseFraming, type ResponseHead } from '../../../src/core/http/response-framing.js';
import { ResponseParser, type ResponseParserEvent, type ResponseParserOptions } from '../../../src/core/http/response-parser.js';

interface Result {
  events: ResponseParserEvent[];
  /** What each push returned. */
  consumed: number[];
  error?: string;
  message?: string;
  parser: ResponseParser;
}

/** Feeds the input in the given pieces (then EOF when `eof`); returns the events, or the error thrown. */
function parse(pieces: (string | Buffer)[], options: Partial<ResponseParserOptions> & { eof?: boolean } = {}): Result {
  const events: ResponseParserEvent[] = [];
  const consumed: number[] = [];
  const parser = new ResponseParser({ maxHeaderBytes: 65536, requestMethod: 'GET', upgradeRequested: false, dechunk: false, ...options }, (event) =>
    events.push(event),
  );
  try {
    for (const piece of pieces) consumed.push(parser.push(Buffer.isBuffer(piece) ? piece : Buffer.from(piece, 'latin1')));
    if (options.eof) parser.end();
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    return { events, consumed, error: error.code, message: error.message, parser };
  }
  return { events, consumed, parser };
}

const kinds = (events: ResponseParserEvent[]) => events.map((event) => event.kind);
const body = (events: ResponseParserEvent[]) => Buffer.concat(events.flatMap((event) => (event.kind === 'data' ? [event.chunk] : []))).toString('latin1');
const heads = (events: ResponseParserEvent[]) => events.flatMap((event) => (event.kind === 'response-head' ? [event] : []));

const head = (status: number, headers: [string, string][] = [], version: '1.0' | '1.1' = '1.1'): ResponseHead => ({ version, status, reason: '', headers });
const framingOf = (status: number, headers: [string, string][] = [], method = 'GET', upgrade = false, version: '1.0' | '1.1' = '1.1') =>
  responseFraming(head(status, headers, version), method, upgrade);
const framingError = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProxyError) return `${error.code}: ${error.message}`;
    throw error;
  }
  return undefined;
};

// --- parseResponseHead -------------------------------------------------------------------------

test('parseResponseHead reads version, status, reason and headers (case and order kept)', (t) => {
  t.deepEqual(parseResponseHead('HTTP/1.1 404 Not Found\r\nX-Case: Kept\r\nA:  b c \r\nA: d'), {
    version: '1.1',
    status: 404,
    reason: 'Not Found',
    headers: [
      ['X-Case', 'Kept'],
      ['A', 'b c'],
      ['A', 'd'],
    ],
  });
  t.is(parseResponseHead('HTTP/1.0 200 OK').version, '1.0');
});

test('an empty reason phrase is accepted with or without its space', (t) => {
  t.deepEqual(parseResponseHead('HTTP/1.1 204 '), { version: '1.1', status: 204, reason: '', headers: [] });
  t.deepEqual(parseResponseHead('HTTP/1.1 204'), { version: '1.1', status: 204, reason: '', headers: [] });
});

test('status codes 100 to 999 are accepted, below 100 refused', (t) => {
  t.is(parseResponseHead('HTTP/1.1 100 Continue').status, 100);
  t.is(parseResponseHead('HTTP/1.1 999 Odd').status, 999);
  t.regex(framingError(() => parseResponseHead('HTTP/1.1 099 Low')) ?? '', /ERR_PROXY_BAD_RESPONSE: invalid status code/);
});

// --- responseFraming ---------------------------------------------------------------------------

test('framing: HEAD, 1xx, 204 and 304 have no body whatever their headers say', (t) => {
  t.deepEqual(framingOf(200, [['Content-Length', '10']], 'HEAD'), { kind: 'none' });
  t.deepEqual(framingOf(200, [['Transfer-Encoding', 'chunked']], 'HEAD'), { kind: 'none' });
  t.deepEqual(framingOf(100), { kind: 'none' });
  t.deepEqual(framingOf(103, [['Link', '</a.css>; rel=preload']]), { kind: 'none' });
  t.deepEqual(framingOf(204, [['Content-Length', '10']]), { kind: 'none' });
  t.deepEqual(framingOf(304, [['Content-Length', '10']]), { kind: 'none' });
});

test('framing: 101 is a tunnel only when an upgrade was requested', (t) => {
  t.deepEqual(framingOf(101, [['Upgrade', 'websocket']], 'GET', true), { kind: 'tunnel' });
  t.regex(framingError(() => framingOf(101, [['Upgrade', 'websocket']])) ?? '', /ERR_PROXY_BAD_RESPONSE: 101/);
});

test('framing: 2xx to CONNECT is a tunnel (its CL and TE ignored); other statuses are not', (t) => {
  t.deepEqual(framingOf(200, [], 'CONNECT'), { kind: 'tunnel' });
  t.deepEqual(
    framingOf(
      299,
      [
        ['Content-Length', '5'],
        ['Transfer-Encoding', 'chunked'],
      ],
      'CONNECT',
    ),
    { kind: 'tunnel' },
  );
  t.deepEqual(framingOf(407, [['Content-Length', '5']], 'CONNECT'), { kind: 'length', length: 5 });
  t.deepEqual(framingOf(200, [], 'GET'), { kind: 'close' });
});

test('framing: Transfer-Encoding with final chunked is chunked, case-insensitively', (t) => {
  t.deepEqual(framingOf(200, [['Transfer-Encoding', 'chunked']]), { kind: 'chunked' });
  t.deepEqual(framingOf(200, [['Transfer-Encoding', 'CHUNKED']]), { kind: 'chunked' });
  t.deepEqual(framingOf(200, [['Transfer-Encoding', 'gzip, chunked']]), { kind: 'chunked' });
  t.deepEqual(
    framingOf(200, [
      ['Transfer-Encoding', 'gzip'],
      ['Transfer-Encoding', 'Chunked'],
    ]),
    { kind: 'chunked' },
  );
});

test('framing: Transfer-Encoding without a final chunked is close-delimited', (t) => {
  t.deepEqual(framingOf(200, [['Transfer-Encoding', 'gzip']]), { kind: 'close' });
  t.deepEqual(framingOf(200, [['Transfer-Encoding', 'chunked, gzip']]), { kind: 'close' });
});

test('framing: Content-Length gives a length, 0 gives none, identical repeats accepted', (t) => {
  t.deepEqual(framingOf(200, [['Content-Length', '42']]), { kind: 'length', length: 42 });
  t.deepEqual(framingOf(200, [['Content-Length', '0']]), { kind: 'none' });
  t.deepEqual(
    framingOf(200, [
      ['Content-Length', '7, 7'],
      ['Content-Length', '7'],
    ]),
    { kind: 'length', length: 7 },
  );
  t.deepEqual(framingOf(200, [['Content-Length', '999999999999999']]), { kind: 'length', length: 999999999999999 });
});

test('framing: neither header is close-delimited, in HTTP/1.0 and 1.1', (t) => {
  t.deepEqual(framingOf(200), { kind: 'close' });
  t.deepEqual(framingOf(200, [], 'GET', false, '1.0'), { kind: 'close' });
  t.deepEqual(framingOf(200, [['Content-Length', '3']], 'GET', false, '1.0'), { kind: 'length', length: 3 });
});

const badFramings: [string, [string, string][], string, '1.0' | '1.1'][] = [
  [
    'CL with TE',
    [
      ['Content-Length', '3'],
      ['Transfer-Encoding', 'chunked'],
    ],
    'both Content-Length and Transfer-Encoding',
    '1.1',
  ],
  ['chunked twice in one field', [['Transfer-Encoding', 'chunked, chunked']], 'more than once', '1.1'],
  [
    'chunked twice in two fields',
    [
      ['Transfer-Encoding', 'chunked'],
      ['Transfer-Encoding', 'chunked'],
    ],
    'more than once',
    '1.1',
  ],
  ['empty TE', [['Transfer-Encoding', '']], 'malformed Transfer-Encoding', '1.1'],
  ['TE with a non-token coding', [['Transfer-Encoding', 'gz ip, chunked']], 'malformed Transfer-Encoding', '1.1'],
  ['TE in HTTP/1.0', [['Transfer-Encoding', 'chunked']], 'HTTP/1.0', '1.0'],
  [
    'differing CLs',
    [
      ['Content-Length', '3'],
      ['Content-Length', '4'],
    ],
    'conflicting Content-Length',
    '1.1',
  ],
  ['differing CLs in one field', [['Content-Length', '3, 4']], 'conflicting Content-Length', '1.1'],
  ['negative CL', [['Content-Length', '-1']], 'invalid Content-Length', '1.1'],
  ['signed CL', [['Content-Length', '+3']], 'invalid Content-Length', '1.1'],
  ['hex CL', [['Content-Length', '0x3']], 'invalid Content-Length', '1.1'],
  ['empty CL', [['Content-Length', '']], 'invalid Content-Length', '1.1'],
  ['CL over 15 digits', [['Content-Length', '1000000000000000']], 'invalid Content-Length', '1.1'],
];

for (const [title, headers, expected, version] of badFramings) {
  test(`framing error: ${title}`, (t) => {
    const message = framingError(() => framingOf(200, headers, 'GET', false, version));
    t.true(message?.startsWith('ERR_PROXY_BAD_RESPONSE: '), message);
    t.true(message?.includes(expected), message);
  });
}

test('framing errors apply to bodiless responses too (their headers reach the client)', (t) => {
  t.regex(
    framingError(() =>
      framingOf(304, [
        ['Content-Length', '3'],
        ['Transfer-Encoding', 'chunked'],
      ]),
    ) ?? '',
    /both Content-Length/,
  );
  t.regex(
    framingError(() =>
      framingOf(
        200,
        [
          ['Content-Length', '3'],
          ['Content-Length', '4'],
        ],
        'HEAD',
      ),
    ) ?? '',
    /conflicting/,
  );
});

// --- ResponseParser: messages ------------------------------------------------------------------

test('a Content-Length response: head, body sub-arrays, message end', (t) => {
  const { events, consumed, error, parser } = parse(['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel', 'lo']);
  t.is(error, undefined);
  t.deepEqual(kinds(events), ['response-head', 'data', 'data', 'message-end']);
  t.is(body(events), 'hello');
  t.deepEqual(consumed, [41, 2]);
  t.true(parser.done);
  const [first] = heads(events);
  t.deepEqual(first?.head, { version: '1.1', status: 200, reason: 'OK', headers: [['Content-Length', '5']] });
  t.deepEqual(first?.framing, { kind: 'length', length: 5 });
  t.false(first?.interim);
});

test('data events are views of the pushed buffer, never copies', (t) => {
  const input = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc');
  const { events } = parse([input]);
  const data = events.find((event) => event.kind === 'data');
  t.is(data?.kind === 'data' && data.chunk.buffer, input.buffer);
  input[input.length - 1] = 0x7a;
  t.is(body(events), 'abz');
});

test('100 Continue then 200: an interim head, then the final response', (t) => {
  const { events, error } = parse(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']);
  t.is(error, undefined);
  t.deepEqual(kinds(events), ['response-head', 'response-head', 'data', 'message-end']);
  t.deepEqual(
    heads(events).map((event) => [event.head.status, event.interim]),
    [
      [100, true],
      [200, false],
    ],
  );
  t.is(body(events), 'ok');
});

test('103 Early Hints (twice) then 200, split across pushes', (t) => {
  const pieces = [
    'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n',
    'HTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\nHTTP/1.1 2',
    '00 OK\r\nContent-Length: 0\r\n\r\n',
  ];
  const { events, parser, consumed } = parse(pieces);
  t.deepEqual(
    heads(events).map((event) => [event.head.status, event.interim]),
    [
      [103, true],
      [103, true],
      [200, false],
    ],
  );
  t.deepEqual(kinds(events).slice(-1), ['message-end']);
  t.true(parser.done);
  t.deepEqual(
    consumed,
    pieces.map((piece) => piece.length),
  );
});

test('after an interim response the parser is not done, and EOF is an error', (t) => {
  const result = parse(['HTTP/1.1 100 Continue\r\n\r\n'], { eof: true });
  t.false(result.parser.done);
  t.is(result.error, 'ERR_PROXY_BAD_RESPONSE');
  t.regex(result.message ?? '', /upstream closed inside a response/);
});

test('a HEAD response with Content-Length has no body; what follows is not consumed', (t) => {
  const head = 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n';
  const { events, consumed } = parse([head + 'HTTP/1.1 200 OK\r\n'], { requestMethod: 'HEAD' });
  t.deepEqual(kinds(events), ['response-head', 'message-end']);
  t.deepEqual(heads(events)[0]?.framing, { kind: 'none' });
  t.deepEqual(consumed, [head.length]);
});

test('204 and 304 end at their head', (t) => {
  for (const status of ['204 No Content', '304 Not Modified']) {
    const head = `HTTP/1.1 ${status}\r\nContent-Length: 10\r\n\r\n`;
    const { events, consumed } = parse([head + 'junk']);
    t.deepEqual(kinds(events), ['response-head', 'message-end'], status);
    t.deepEqual(consumed, [head.length], status);
  }
});

test('a close-delimited body runs until end()', (t) => {
  const events: ResponseParserEvent[] = [];
  const parser = new ResponseParser({ maxHeaderBytes: 1024, requestMethod: 'GET', upgradeRequested: false, dechunk: false }, (e) => events.push(e));
  t.is(parser.push(Buffer.from('HTTP/1.0 200 OK\r\n\r\nsome ')), 24);
  t.is(parser.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')), 19, 'everything is body until EOF');
  t.false(parser.done);
  t.deepEqual(kinds(events), ['response-head', 'data', 'data']);
  parser.end();
  t.true(parser.done);
  t.deepEqual(kinds(events).slice(-1), ['message-end']);
  t.is(body(events), 'some HTTP/1.1 200 OK\r\n\r\n');
  t.deepEqual(heads(events)[0]?.framing, { kind: 'close' });
});

test('a chunked body passes through raw, with extensions and trailers', (t) => {
  const wire = '4;name=value;q="a;b"\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n';
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const { events, error, consumed } = parse([head + wire + 'EXTRA']);
  t.is(error, undefined);
  t.deepEqual(kinds(events), ['response-head', 'data', 'message-end']);
  t.is(body(events), wire);
  t.deepEqual(consumed, [head.length + wire.length]);
});

test('dechunk mode emits only the payload', (t) => {
  const wire = '4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n';
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const whole = parse([head + wire], { dechunk: true });
  t.is(whole.error, undefined);
  t.is(body(whole.events), 'Wikipedia in\r\n\r\nchunks.');
  t.deepEqual(
    kinds(whole.events).filter((kind) => kind !== 'data'),
    ['response-head', 'message-end'],
  );
  const split = parse([head, ...wire], { dechunk: true });
  t.is(body(split.events), 'Wikipedia in\r\n\r\nchunks.');
  t.true(split.parser.done);
});

test('dechunk mode emits no empty data events', (t) => {
  const { events } = parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '3\r\n', 'abc', '\r\n0\r\n\r\n'], { dechunk: true });
  t.deepEqual(kinds(events), ['response-head', 'data', 'message-end']);
  t.true(events.every((event) => event.kind !== 'data' || event.chunk.length > 0));
});

test('a response split byte by byte parses the same', (t) => {
  const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n';
  const { events, error, consumed, parser } = parse([...text, 'X']);
  t.is(error, undefined);
  t.deepEqual(
    heads(events).map((event) => event.head.status),
    [100, 200],
  );
  t.is(body(events), 'a\r\n0123456789\r\n0\r\n\r\n');
  t.true(parser.done);
  t.deepEqual(consumed, [...new Array<number>(text.length).fill(1), 0]);
});

test('two responses in one chunk: push returns the end of the first', (t) => {
  const first = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  const { events, consumed, parser } = parse([first + 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno']);
  t.deepEqual(consumed, [first.length]);
  t.deepEqual(kinds(events), ['response-head', 'data', 'message-end']);
  t.is(body(events), 'ok');
  t.is(parser.push(Buffer.from('more')), 0, 'nothing is consumed once done');
});

test('extra bytes after a chunked body are not consumed', (t) => {
  const first = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n';
  const { consumed } = parse([first.slice(0, 20), first.slice(20) + '\r\n']);
  t.deepEqual(consumed, [20, first.length - 20]);
});

test('empty lines before a status line are skipped', (t) => {
  const pieces = ['\r\n\r', '\nHTTP/1.1 204 \r\n\r\n'];
  const { events, error, consumed } = parse([...pieces, 'X']);
  t.is(error, undefined);
  t.deepEqual(kinds(events), ['response-head', 'message-end']);
  t.deepEqual(consumed, [...pieces.map((piece) => piece.length), 0]);
});

test('101 to an upgrade request: head, message end, then every later byte is tunnel data', (t) => {
  const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
  const { events, consumed, parser } = parse([head + '\x81\x05hello', 'HTTP/1.1 200 OK\r\n\r\n'], { upgradeRequested: true, eof: true });
  t.deepEqual(kinds(events), ['response-head', 'message-end', 'data', 'data']);
  t.false(heads(events)[0]?.interim);
  t.deepEqual(heads(events)[0]?.framing, { kind: 'tunnel' });
  t.is(body(events), '\x81\x05helloHTTP/1.1 200 OK\r\n\r\n');
  t.deepEqual(consumed, [head.length + 7, 19]);
  t.true(parser.done);
});

test('200 to CONNECT is a tunnel, even with a Content-Length', (t) => {
  const input = 'HTTP/1.1 200 Connection established\r\nContent-Length: 3\r\n\r\n\x16\x03\x01\x00';
  const { events, consumed } = parse([input], { requestMethod: 'CONNECT' });
  t.deepEqual(kinds(events), ['response-head', 'message-end', 'data']);
  t.is(body(events), '\x16\x03\x01\x00');
  t.deepEqual(consumed, [input.length]);
});

test('407 to CONNECT is an ordinary response', (t) => {
  const response = 'HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nno';
  const { events, consumed } = parse([response + 'X'], { requestMethod: 'CONNECT' });
  t.deepEqual(kinds(events), ['response-head', 'data', 'message-end']);
  t.is(body(events), 'no');
  t.deepEqual(consumed, [response.length]);
});

// --- ResponseParser: EOF ---------------------------------------------------------------------

test('started and done follow the bytes seen', (t) => {
  const parser = new ResponseParser({ maxHeaderBytes: 1024, requestMethod: 'GET', upgradeRequested: false, dechunk: false }, () => {});
  t.false(parser.started);
  t.false(parser.done);
  parser.push(Buffer.alloc(0));
  t.false(parser.started);
  parser.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n'));
  t.true(parser.started);
  t.false(parser.done);
  parser.push(Buffer.from('x'));
  t.true(parser.done);
  t.notThrows(() => parser.end(), 'EOF after a complete response is fine');
});

const eofCases: [string, string[], string][] = [
  ['before any byte', [], 'upstream closed the connection before responding'],
  ['inside a status line', ['HTTP/1.1 20'], 'upstream closed inside a response head'],
  ['inside the headers', ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n'], 'upstream closed inside a response head'],
  ['inside a length body', ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc'], 'upstream closed inside a response body'],
  ['right after a length head', ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'], 'upstream closed inside a response body'],
  ['inside a chunked body', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'], 'upstream closed inside a response body'],
  ['before the last chunk', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n'], 'upstream closed inside a response body'],
];

for (const [title, pieces, expected] of eofCases) {
  test(`EOF ${title} is a 502`, (t) => {
    const result = parse(pieces, { eof: true });
    t.is(result.error, 'ERR_PROXY_BAD_RESPONSE');
    t.is(result.message, expected);
  });
}

// --- ResponseParser: the ambiguous-response corpus --------------------------------------------

const malformed: [string, string, string, Partial<ResponseParserOptions>?][] = [
  ['CL with TE', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 'both Content-Length and Transfer-Encoding'],
  ['TE with CL', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n', 'both Content-Length and Transfer-Encoding'],
  ['differing CLs', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n', 'conflicting Content-Length'],
  ['chunked, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 'more than once'],
  ['invalid CL', 'HTTP/1.1 200 OK\r\nContent-Length: 3a\r\n\r\n', 'invalid Content-Length'],
  ['four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n', 'malformed status line'],
  ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', 'malformed status line'],
  ['non-numeric status', 'HTTP/1.1 abc OK\r\n\r\n', 'malformed status line'],
  ['HTTP/2 status line', 'HTTP/2 200 OK\r\n\r\n', 'malformed status line'],
  ['HTTP/2.0 status line', 'HTTP/2.0 200 OK\r\n\r\n', 'unsupported HTTP version'],
  ['HTTP/1.2 status line', 'HTTP/1.2 200 OK\r\n\r\n', 'unsupported HTTP version'],
  ['ICY status line', 'ICY 200 OK\r\n\r\n', 'malformed status line'],
  ['lower-case protocol', 'http/1.1 200 OK\r\n\r\n', 'malformed status line'],
  ['two spaces before the status', 'HTTP/1.1  200 OK\r\n\r\n', 'malformed status line'],
  ['tab instead of a space', 'HTTP/1.1\t200 OK\r\n\r\n', 'malformed status line'],
  ['NUL in the reason', 'HTTP/1.1 200 O\x00K\r\n\r\n', 'invalid character in reason phrase'],
  ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\n', 'whitespace before a header colon'],
  ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n', 'obsolete line folding'],
  ['header without colon', 'HTTP/1.1 200 OK\r\nX-A\r\n\r\n', 'without a colon'],
  ['NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n', 'invalid character'],
  ['bare CR in a value', 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n', 'bare CR'],
  ['bare LF line ending', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'bare LF'],
  ['bare LF head end', 'HTTP/1.1 200 OK\r\nContent-Length: 0\n\n', 'bare LF'],
  ['bare LF before the status line', '\nHTTP/1.1 200 OK\r\n\r\n', 'bare LF'],
  ['101 without an upgrade request', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', '101'],
  ['TE in HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'HTTP/1.0'],
];

for (const [title, input, expected, options] of malformed) {
  test(`502: ${title}`, (t) => {
    const result = parse([input], options);
    t.is(result.error, 'ERR_PROXY_BAD_RESPONSE');
    t.true(result.message?.includes(expected), result.message);
    t.deepEqual(result.events, [], 'nothing of a malformed response is emitted');
  });
}

const chunkedHead = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
const badChunks: [string, string, string][] = [
  ['non-hex size', 'g\r\n', 'malformed chunk size'],
  ['empty size', '\r\n', 'malformed chunk size'],
  ['negative size', '-5\r\n', 'malformed chunk size'],
  ['size past 2^53', 'fffffffffffffff\r\n', 'chunk size too large'],
  ['extension without name', '5;\r\n', 'malformed chunk extension'],
  ['bare LF after size', '5\nhello\r\n', 'bare LF'],
  ['data longer than its size', '3\r\nhello\r\n', 'not followed by CRLF'],
  ['malformed trailer name', '0\r\nBad Trailer: x\r\n\r\n', 'malformed header name'],
  ['trailer with space before colon', '0\r\nX-T : x\r\n\r\n', 'whitespace before a header colon'],
];

for (const [title, input, expected] of badChunks) {
  for (const dechunk of [false, true]) {
    test(`502 in a chunked body${dechunk ? ' (dechunking)' : ''}: ${title}`, (t) => {
      const result = parse([chunkedHead + input], { dechunk });
      t.is(result.error, 'ERR_PROXY_BAD_RESPONSE');
      t.true(result.message?.includes(expected), result.message);
    });
  }
}

test('a head over the limit is a 502, whether complete or not', (t) => {
  const big = 'HTTP/1.1 200 OK\r\nX-A: ' + 'a'.repeat(2000);
  for (const pieces of [[big], [big + '\r\n\r\n'], [big.slice(0, 1000), big.slice(1000)]]) {
    const result = parse(pieces, { maxHeaderBytes: 1024 });
    t.is(result.error, 'ERR_PROXY_BAD_RESPONSE');
    t.is(result.message, 'response head larger than 1024 bytes');
  }
});

test('a head exactly at the limit is accepted', (t) => {
  const start = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: ';
  const head = start + 'a'.repeat(1024 - start.length - 4) + '\r\n\r\n';
  t.is(Buffer.byteLength(head), 1024);
  const result = parse([head], { maxHeaderBytes: 1024 });
  t.is(result.error, undefined);
  t.deepEqual(kinds(result.events), ['response-head', 'message-end']);
});

test('the status line read by position agrees with the full check, edge by edge', (t) => {
  const status = (line: string) => {
    const { version, status, reason } = parseResponseHead(line);
    return { version, status, reason };
  };
  t.deepEqual(status('HTTP/1.1 200 OK'), { version: '1.1', status: 200, reason: 'OK' });
  t.deepEqual(status('HTTP/1.0 404 Not Found'), { version: '1.0', status: 404, reason: 'Not Found' });
  t.deepEqual(status('HTTP/1.1 204'), { version: '1.1', status: 204, reason: '' });
  t.deepEqual(status('HTTP/1.1 204 '), { version: '1.1', status: 204, reason: '' });
  const refused: [string, string][] = [
    ['HTTP/1.1 099 Low', 'invalid status code 099'],
    ['HTTP/1.2 200 OK', 'unsupported HTTP version 1.2'],
    ['HTTP/1.1 2x0 OK', 'malformed status line'],
    ['HTTP/1.1 200OK', 'malformed status line'],
    ['HTTP/1.1 200 O\x01K', 'invalid character in reason phrase'],
  ];
  for (const [line, message] of refused) {
    const error = t.throws(() => parseResponseHead(line), { instanceOf: ProxyError }, line);
    t.is(error?.message, message, line);
  }
});
