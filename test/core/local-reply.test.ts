// localReply() and checkLocalReply(): a plugin's own answer always frames its body with a
// matching Content-Length, or is refused with a message that says what is wrong.
import test from 'ava';
import { ProxyError } from '../../src/core/errors.js';
import type { LocalReply } from '../../src/core/exchange.js';
import { checkLocalReply, localReply } from '../../src/core/local-reply.js';

test('localReply: status, Node reason phrase, headers in order, a Content-Length of the UTF-8 body', (t) => {
  const reply = localReply(201, {
    headers: [
      ['Content-Type', 'application/json'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
    ],
    body: '{"name":"é"}',
  });
  t.deepEqual(reply.head, {
    version: '1.1',
    status: 201,
    reason: 'Created',
    headers: [
      ['Content-Type', 'application/json'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
      ['Content-Length', '13'],
    ],
  });
  t.is(reply.body.toString(), '{"name":"é"}');
});

test('localReply: an object of headers, no body, a reason of its own, an unknown status', (t) => {
  t.deepEqual(localReply(404, { headers: { 'X-A': '1' } }).head.headers, [
    ['X-A', '1'],
    ['Content-Length', '0'],
  ]);
  t.is(localReply(200, { reason: 'Fine' }).head.reason, 'Fine');
  t.is(localReply(599).head.reason, 'Unknown');
});

test('localReply: a Buffer body is used as is, other bytes are wrapped without a copy', (t) => {
  const buffer = Buffer.from('shared');
  t.is(localReply(200, { body: buffer }).body, buffer);
  const bytes = new Uint8Array([1, 2, 3, 4]).subarray(1, 3);
  const wrapped = localReply(200, { body: bytes }).body;
  t.deepEqual([...wrapped], [2, 3]);
  t.is(wrapped.buffer, bytes.buffer);
});

test('localReply: any Content-Length or Transfer-Encoding given is replaced by the real length; 204 and 304 get none', (t) => {
  const reply = localReply(200, {
    headers: [
      ['content-length', '999'],
      ['Transfer-Encoding', 'chunked'],
    ],
    body: 'abc',
  });
  t.deepEqual(reply.head.headers, [['Content-Length', '3']]);
  t.deepEqual(localReply(204).head.headers, []);
  t.deepEqual(localReply(304, { headers: { ETag: '"x"' } }).head.headers, [['ETag', '"x"']]);
});

test('localReply: a status that is not final, a body on a 204, or a field that is not HTTP throws ERR_PROXY_INTERNAL', (t) => {
  const cases: [() => unknown, RegExp][] = [
    [() => localReply(100), /status 100 is not a final status/],
    [() => localReply(101), /status 101/],
    [() => localReply(1000), /status 1000/],
    [() => localReply(200.5), /status 200.5/],
    [() => localReply(204, { body: 'x' }), /a 204 response has no body, found 1 bytes/],
    [() => localReply(200, { headers: { 'Bad Name': 'x' } }), /field name "Bad Name" is not a token/],
    [() => localReply(200, { headers: { 'X-A': 'a\r\nSet-Cookie: b' } }), /field X-A: .* is not a valid field value/],
    [() => localReply(200, { reason: 'OK\r\n' }), /reason phrase/],
  ];
  for (const [make, message] of cases) {
    const error = t.throws(make, { instanceOf: ProxyError });
    t.is(error?.code, 'ERR_PROXY_INTERNAL');
    t.regex(error?.message ?? '', message);
  }
});

const reply = (status: number, headers: [string, string][], body = ''): LocalReply => ({
  head: { version: '1.1', status, reason: 'X', headers },
  body: Buffer.from(body),
});

test('checkLocalReply: a framed reply is returned as is; a missing Content-Length is added to a copy', (t) => {
  const framed = reply(200, [['Content-Length', '2']], 'ok');
  t.is(checkLocalReply(framed), framed);
  const bare = reply(200, [['X-A', '1']], 'hello');
  const fixed = checkLocalReply(bare);
  t.deepEqual(fixed.head.headers, [
    ['X-A', '1'],
    ['Content-Length', '5'],
  ]);
  t.deepEqual(bare.head.headers, [['X-A', '1']], "the plugin's reply is left unchanged");
  const notModified = reply(304, [['Content-Length', '1234']]);
  t.is(checkLocalReply(notModified), notModified, "a 304's Content-Length describes the representation");
});

test('checkLocalReply: Transfer-Encoding, a mismatched Content-Length, a 204 with one, or a body that is not a Buffer throws', (t) => {
  const cases: [LocalReply, RegExp][] = [
    [reply(200, [['Transfer-Encoding', 'chunked']], '0\r\n\r\n'), /framed by Transfer-Encoding/],
    [reply(200, [['Content-Length', '3']], 'four'), /Content-Length "3" does not match its body of 4 bytes/],
    [
      reply(
        200,
        [
          ['Content-Length', '4'],
          ['Content-Length', '5'],
        ],
        'four',
      ),
      /Content-Length "5"/,
    ],
    [reply(204, [['Content-Length', '0']]), /a 204 response has no Content-Length/],
    [{ head: { version: '1.1', status: 200, reason: 'OK', headers: [] }, body: 'text' as unknown as Buffer }, /its body is not a Buffer/],
  ];
  for (const [bad, message] of cases) {
    const error = t.throws(() => checkLocalReply(bad), { instanceOf: ProxyError });
    t.regex(error?.message ?? '', message);
  }
});
