// Request smuggling on kept-alive connections: every ambiguous or malformed framing is answered 400
// with Connection: close and the connection closed, and the origin (which records every byte) never
// sees a second request. Ambiguous responses are answered 502 and the connection closed.
import test, { type ExecutionContext } from 'ava';
import { startProxy } from '../../helpers/net.js';
import { pollUntil } from '../../helpers/wire.js';
import { exchange, get, hasToken, header, ok, startKeepAliveOrigin, withClient, type Client } from '../../helpers/keep-alive.js';

/** What the smuggler hopes the origin takes as a request of its own. */
const smuggled = (port: number) => `GET http://127.0.0.1:${port}/smuggled HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;

/** The start of the first request: a POST to /first. */
const start = (port: number) => `POST http://127.0.0.1:${port}/first HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`;

/** Request lines anywhere in raw bytes, at a line start: what an origin parser could take as a request. */
function requestLines(raw: string): string[] {
  return [...raw.matchAll(/(?:^|\n)([A-Za-z]+ \S+ HTTP\/\d\.\d)\r?\n/g)].map((match) => match[1]!);
}

interface Case {
  name: string;
  /** The whole write, given the origin's port. */
  request: (port: number) => string;
  /**
   * 'head': the head itself is invalid, the origin must see nothing at all.
   * 'body': the head is valid and the body malformed, the origin may see the first request only.
   */
  bad: 'head' | 'body';
}

const S = smuggled;
const cases: Case[] = [
  // Content-Length and Transfer-Encoding together, either order.
  {
    name: 'CL.TE: Content-Length: 6 + Transfer-Encoding: chunked, 0 CRLF CRLF G...',
    bad: 'head',
    request: (p) => `${start(p)}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${S(p)}`,
  },
  {
    name: 'TE.CL: Transfer-Encoding: chunked + Content-Length covering the size line only',
    bad: 'head',
    request: (p) => {
      const size = S(p).length.toString(16);
      return `${start(p)}Transfer-Encoding: chunked\r\nContent-Length: ${size.length + 2}\r\n\r\n${size}\r\n${S(p)}\r\n0\r\n\r\n`;
    },
  },
  // Transfer-Encoding obfuscations (no Content-Length): a proxy that ignores the field would take
  // the smuggled request as the next one.
  { name: 'TE.TE: Transfer-Encoding: xchunked', bad: 'head', request: (p) => `${start(p)}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${S(p)}` },
  {
    name: 'TE.TE: a header line starting with a space: " Transfer-Encoding: chunked"',
    bad: 'head',
    request: (p) => `${start(p)}X-Pad: x\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${S(p)}`,
  },
  {
    name: 'TE.TE: Transfer-Encoding: chunked, identity',
    bad: 'head',
    request: (p) => `${start(p)}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${S(p)}`,
  },
  {
    name: 'TE.TE: space before the colon: "Transfer-Encoding : chunked"',
    bad: 'head',
    request: (p) => `${start(p)}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n${S(p)}`,
  },
  {
    name: 'TE.TE: two Transfer-Encoding fields: chunked and identity',
    bad: 'head',
    request: (p) => `${start(p)}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${S(p)}`,
  },
  {
    name: 'TE.TE: two Transfer-Encoding fields: chunked and x',
    bad: 'head',
    request: (p) => `${start(p)}Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n${S(p)}`,
  },
  {
    name: 'TE.TE: Transfer-Encoding with an obs-fold: "Transfer-Encoding:" CRLF " chunked"',
    bad: 'head',
    request: (p) => `${start(p)}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${S(p)}`,
  },
  // Content-Length variants.
  {
    name: 'two Content-Length fields with different values',
    bad: 'head',
    request: (p) => `${start(p)}Content-Length: 5\r\nContent-Length: 50\r\n\r\nhello${S(p)}`,
  },
  { name: 'one Content-Length field listing different values', bad: 'head', request: (p) => `${start(p)}Content-Length: 5, 50\r\n\r\nhello${S(p)}` },
  { name: 'Content-Length with a plus sign', bad: 'head', request: (p) => `${start(p)}Content-Length: +5\r\n\r\nhello${S(p)}` },
  { name: 'Content-Length with a minus sign', bad: 'head', request: (p) => `${start(p)}Content-Length: -5\r\n\r\nhello${S(p)}` },
  { name: 'Content-Length with a space inside', bad: 'head', request: (p) => `${start(p)}Content-Length: 1 0\r\n\r\nhello${S(p)}` },
  // Chunk-size tricks: the head is valid, the body is not.
  { name: 'chunk size 0x5', bad: 'body', request: (p) => `${start(p)}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n${S(p)}` },
  {
    name: 'chunk size "5 ;" (space, then an empty extension)',
    bad: 'body',
    request: (p) => `${start(p)}Transfer-Encoding: chunked\r\n\r\n5 ;\r\nhello\r\n0\r\n\r\n${S(p)}`,
  },
  { name: 'chunk size with a leading +', bad: 'body', request: (p) => `${start(p)}Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n${S(p)}` },
  {
    name: 'a huge chunk size',
    bad: 'body',
    request: (p) => `${start(p)}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n${S(p)}`,
  },
  {
    name: 'a chunk extension ended by a bare LF',
    bad: 'body',
    request: (p) => `${start(p)}Transfer-Encoding: chunked\r\n\r\n5;ext=1\nhello\r\n0\r\n\r\n${S(p)}`,
  },
  { name: 'no CRLF after the chunk data', bad: 'body', request: (p) => `${start(p)}Transfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n${S(p)}` },
];

/** A recording origin: parses strictly, answers complete requests `fine`, records every byte. */
const recordingOrigin = () => startKeepAliveOrigin(() => ok('fine'));

/** Checks: 400 with Connection: close, then the proxy closes. */
async function assertRejected(t: ExecutionContext, client: Client) {
  const response = await client.reader.next({ method: 'POST' });
  t.is(response.status, 400, `status line: ${response.statusLine}`);
  t.true(hasToken(response, 'connection', 'close'), `headers: ${JSON.stringify(response.headers)}`);
  t.true(await client.reader.waitEnd(), 'the proxy closes the connection');
  t.is(client.reader.pending, '', 'one response only');
}

for (const c of cases) {
  test(`smuggling: ${c.name} → 400, closed, no second request at the origin`, async (t) => {
    const origin = await recordingOrigin();
    await withClient(startProxy(), [origin], async (client) => {
      client.socket.write(c.request(origin.port));
      try {
        await assertRejected(t, client);
      } finally {
        // Let whatever the proxy forwarded reach the origin: wait (bounded) until the origin saw its
        // upstream connections close. Not an assertion; only makes the checks below see everything.
        await pollUntil(() => origin.closed >= origin.connections, 40);
      }
      const raw = origin.received.join('');
      const lines = requestLines(raw);
      if (c.bad === 'head') {
        t.deepEqual(lines, [], `the origin must see nothing of an invalid head; got ${JSON.stringify(raw.slice(0, 300))}`);
      } else {
        t.true(lines.length <= 1, `at most the first request line; got ${JSON.stringify(lines)}`);
        if (lines.length === 1) t.is(lines[0], 'POST /first HTTP/1.1');
      }
      t.false(raw.includes('/smuggled'), `nothing of the smuggled request reaches the origin; got ${JSON.stringify(raw.slice(0, 300))}`);
      t.true(origin.lines.length <= 1);
    });
  });
}

// Valid variants that look like the ones above: they must work normally, and the connection stays usable.
for (const [name, field] of [
  ['Transfer-Encoding:<TAB>chunked (a tab is OWS)', 'Transfer-Encoding:\tchunked'],
  ['Transfer-Encoding:  chunked<SP> (spaces are OWS)', 'Transfer-Encoding:  chunked '],
] as const) {
  test(`valid: ${name} is forwarded normally and the connection stays open`, async (t) => {
    const origin = await recordingOrigin();
    await withClient(startProxy(), [origin], async (client) => {
      const response = await exchange(client, `${start(origin.port)}${field}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      t.is(response.status, 200);
      t.is(response.body, 'fine');
      t.deepEqual(origin.lines, ['POST /first HTTP/1.1']);
      t.is(origin.requests[0]!.body, 'hello');
      const second = await exchange(client, get(origin.port, '/second'));
      t.is(second.body, 'fine');
      t.deepEqual(origin.lines, ['POST /first HTTP/1.1', 'GET /second HTTP/1.1']);
    });
  });
}

test('a second request hidden in a correctly framed body is only body: one request at the origin', async (t) => {
  const origin = await recordingOrigin();
  await withClient(startProxy(), [origin], async (client) => {
    const hidden = smuggled(origin.port);
    const response = await exchange(client, `${start(origin.port)}Content-Length: ${hidden.length}\r\n\r\n${hidden}`);
    t.is(response.status, 200);
    t.is(response.body, 'fine');
    t.deepEqual(origin.lines, ['POST /first HTTP/1.1']);
    t.is(origin.requests[0]!.body, hidden, 'the hidden request arrives as body bytes, untouched');
    // The connection is in sync: the next request is answered as the next request.
    const second = await exchange(client, get(origin.port, '/second'));
    t.is(second.body, 'fine');
    t.deepEqual(origin.lines, ['POST /first HTTP/1.1', 'GET /second HTTP/1.1']);
  });
});

for (const [name, answer] of [
  ['Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['two different Content-Length values', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
  ['Content-Length: abc', 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello'],
] as const) {
  test(`an ambiguous response (${name}) → 502 to the client, connection closed`, async (t) => {
    const origin = await startKeepAliveOrigin(() => answer);
    await withClient(startProxy(), [origin], async (client) => {
      client.socket.write(get(origin.port, '/ambiguous'));
      const response = await client.reader.next();
      t.is(response.status, 502, `status line: ${response.statusLine}`);
      t.true(hasToken(response, 'connection', 'close'), `headers: ${JSON.stringify(response.headers)}`);
      t.is(header(response, 'transfer-encoding'), undefined);
      t.true(await client.reader.waitEnd(), 'the proxy closes the connection');
      t.false(client.reader.pending.includes('hello'), 'nothing of the ambiguous body reaches the client');
    });
  });
}
