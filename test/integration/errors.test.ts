import test, { type ExecutionContext } from 'ava';
import { closedPort, connectTo, proxiedRequest, readUntil, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { startBlackHole } from '../helpers/blackhole.js';
import { collect, parseResponse, recordingOrigin, sendAndCollect, type Exchange } from '../helpers/wire.js';

// One proxy with the default chain serves every case below; the last test checks it still works.
let proxy: Awaited<ReturnType<typeof startProxy>>;
test.before(async () => {
  proxy = await startProxy();
});
test.after.always(async () => {
  await proxy?.close();
});

/**
 * Checks an error answer: the status line, `Connection: close`, a one-line text body whose length
 * matches Content-Length, then the proxy's FIN. Returns the body.
 */
function assertError(t: ExecutionContext, exchange: Exchange, status: number, reason: string, body?: RegExp): string {
  const response = parseResponse(exchange.text);
  t.is(response.statusLine, `HTTP/1.1 ${status} ${reason}`);
  t.true(response.headers.includes('Connection: close'), `headers: ${JSON.stringify(response.headers)}`);
  t.true(response.headers.includes('Content-Type: text/plain; charset=utf-8'));
  t.true(response.headers.includes(`Content-Length: ${Buffer.byteLength(response.body)}`));
  t.regex(response.body, /^[^\r\n]+\n$/, 'a one-line body');
  if (body) t.regex(response.body, body);
  t.is(exchange.how, 'end', 'the connection is closed after the answer');
  return response.body;
}

const minimalChain = (headParser: Record<string, unknown>, dialer: Record<string, unknown> = {}) => [
  { name: 'head-parser', options: headParser },
  'connect-handler',
  'http-forward',
  { name: 'upstream-dialer', options: dialer },
];

test.serial('a malformed request line is answered 400', async (t) => {
  assertError(t, await sendAndCollect(proxy.port, 'GARBAGE\r\n\r\n'), 400, 'Bad Request', /malformed request line/);
  assertError(t, await sendAndCollect(proxy.port, 'GET  http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\n\r\n'), 400, 'Bad Request');
  assertError(t, await sendAndCollect(proxy.port, 'GET http://127.0.0.1:1/ HTTP/2.0\r\nHost: a\r\n\r\n'), 400, 'Bad Request', /version/);
});

// Refusals of well-framed requests (routing, dialling) keep the connection unless the client
// asked to close it (see test/integration/refusals.test.ts); the requests below ask, so each
// answer ends its connection as assertError expects.
test.serial('an origin-form request is answered 400 naming an absolute URL', async (t) => {
  assertError(t, await sendAndCollect(proxy.port, 'GET / HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n'), 400, 'Bad Request', /absolute URL/);
});

test.serial('CONNECT without a port is answered 400', async (t) => {
  assertError(t, await sendAndCollect(proxy.port, 'CONNECT 127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'), 400, 'Bad Request', /port/);
});

test.serial('a request head over 64 KiB is answered 431', async (t) => {
  const big = `GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`;
  assertError(t, await sendAndCollect(proxy.port, big), 431, 'Request Header Fields Too Large', /65536/);
  // Also when the head never ends: the limit is checked as bytes arrive.
  const endless = `GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(70 * 1024)}`;
  assertError(t, await sendAndCollect(proxy.port, endless), 431, 'Request Header Fields Too Large');
});

test.serial('a smaller maxHeaderBytes on head-parser is honoured', async (t) => {
  const origin = await startHttpOrigin((_request, response) => response.end('fine'));
  const small = await startProxy({ plugins: minimalChain({ maxHeaderBytes: 2048 }) });
  try {
    const over = `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(2100)}\r\n\r\n`;
    assertError(t, await sendAndCollect(small.port, over), 431, 'Request Header Fields Too Large', /2048/);
    const under = `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: ${'a'.repeat(1500)}\r\n\r\n`;
    const { text } = await sendAndCollect(small.port, under);
    t.is(parseResponse(text).body, 'fine');
  } finally {
    await small.close();
    await origin.close();
  }
});

test.serial('an upstream that refuses the connection is answered 502 naming the cause', async (t) => {
  const port = await closedPort();
  assertError(
    t,
    await sendAndCollect(proxy.port, `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`),
    502,
    'Bad Gateway',
    /connection refused/,
  );
  assertError(
    t,
    await sendAndCollect(proxy.port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`),
    502,
    'Bad Gateway',
    /connection refused/,
  );
});

test.serial('an unknown host name is answered 502', async (t) => {
  // .invalid never resolves (RFC 6761); the resolver fails at once here.
  assertError(
    t,
    await sendAndCollect(proxy.port, 'GET http://no-such-host.invalid:8080/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
    502,
    'Bad Gateway',
    /no-such-host\.invalid/,
  );
});

test.serial('a connect that hangs is answered 504 after connectTimeoutMs', async (t) => {
  const hole = await startBlackHole();
  const timed = await startProxy({ plugins: minimalChain({}, { connectTimeoutMs: 300 }) });
  try {
    const body = assertError(
      t,
      await sendAndCollect(timed.port, `GET http://127.0.0.1:${hole.port}/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`),
      504,
      'Gateway Timeout',
      /timed out after 300 ms/,
    );
    t.log(body.trim());
    assertError(t, await sendAndCollect(timed.port, `CONNECT 127.0.0.1:${hole.port} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`), 504, 'Gateway Timeout');
  } finally {
    await timed.close();
    await hole.close();
  }
});

const smuggling: [string, (port: number) => string][] = [
  [
    'Content-Length with Transfer-Encoding',
    (p) => `POST http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  ],
  ['two different Content-Lengths', (p) => `POST http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`],
  ['a Content-Length list with different values', (p) => `POST http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\nabcde`],
  ['Transfer-Encoding: gzip, chunked', (p) => `POST http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`],
  [
    'Transfer-Encoding: chunked twice',
    (p) => `POST http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  ],
  ['whitespace before a header colon', (p) => `POST http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nabcde`],
  ['obs-fold', (p) => `GET http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n`],
  ['a bare LF in the head', (p) => `GET http://127.0.0.1:${p}/ HTTP/1.1\nHost: a\r\n\r\n`],
  ['a bare LF ending the head', (p) => `GET http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\n\n`],
  ['two Host fields', (p) => `GET http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`],
  ['a non-numeric Content-Length', (p) => `POST http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nabcde`],
];

for (const [name, request] of smuggling) {
  test.serial(`${name} is answered 400 and nothing reaches the origin`, async (t) => {
    const recorder = recordingOrigin('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    const origin = await startRawOrigin(recorder.onSocket);
    try {
      assertError(t, await sendAndCollect(proxy.port, request(origin.port)), 400, 'Bad Request');
      t.is(recorder.connections, 0);
      t.is(recorder.totalBytes, 0);
    } finally {
      await origin.close();
    }
  });
}

const badChunks: [string, string][] = [
  ['a malformed chunk size', 'zz\r\nabc\r\n0\r\n\r\n'],
  ['a chunk size with a sign', '+3\r\nabc\r\n0\r\n\r\n'],
  ['a bare LF after a chunk size', '3\nabc\r\n0\r\n\r\n'],
  ['chunk data not followed by CRLF', '3\r\nabcd\r\n0\r\n\r\n'],
];

for (const [name, body] of badChunks) {
  test.serial(`${name} is answered 400 and no byte reaches the origin`, async (t) => {
    const recorder = recordingOrigin('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    const origin = await startRawOrigin(recorder.onSocket);
    try {
      // Head and broken body in one write: the body is refused before the dial completes.
      const head = `POST http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n`;
      assertError(t, await sendAndCollect(proxy.port, head + body), 400, 'Bad Request', /chunk/);
      t.is(recorder.totalBytes, 0);
    } finally {
      await origin.close();
    }
  });
}

test.serial('an upstream reset after the response started destroys the client connection, with no second response', async (t) => {
  let resetOrigin!: () => void;
  const origin = await startRawOrigin((socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial body');
      resetOrigin = () => socket.resetAndDestroy();
    });
  });
  const client = await connectTo(proxy.port);
  try {
    client.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: a\r\n\r\n`);
    const partial = 'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nVia: 1.1 proxyline\r\n\r\npartial body';
    // Reset only once the client has the start of the response, so the order is certain.
    t.is(await readUntil(client, (text) => text.length >= partial.length), partial);
    const rest = collect(client);
    resetOrigin();
    const exchange = await rest;
    t.is(exchange.text, '', 'no second response after the first one started');
  } finally {
    client.destroy();
    await origin.close();
  }
});

// errors.ts documents ERR_PROXY_UPSTREAM_CONNECT (502) for an upstream "reset before a response".
test.serial('an upstream reset before any response byte is answered 502', async (t) => {
  const origin = await startRawOrigin((socket) => socket.once('data', () => socket.resetAndDestroy()));
  try {
    const exchange = await sendAndCollect(proxy.port, `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: a\r\n\r\n`);
    assertError(t, exchange, 502, 'Bad Gateway');
  } finally {
    await origin.close();
  }
});

test.serial('a client that sends no complete head in time is answered 408', async (t) => {
  const slow = await startProxy({ plugins: minimalChain({ headersTimeoutMs: 200 }) });
  try {
    assertError(t, await sendAndCollect(slow.port, 'GET http://127.0.0.1:1/ HTTP/1.1\r\nHost'), 408, 'Request Timeout');
    const silent = await connectTo(slow.port);
    try {
      assertError(t, await collect(silent), 408, 'Request Timeout');
    } finally {
      silent.destroy();
    }
  } finally {
    await slow.close();
  }
});

test.serial('after all of these the proxy still serves a normal request', async (t) => {
  const origin = await startHttpOrigin((request, response) => response.end(`still here ${request.url}`));
  try {
    const response = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/alive`);
    t.is(response.status, 200);
    t.is(response.body.toString(), 'still here /alive');
  } finally {
    await origin.close();
  }
});

test('a chain where no plugin attaches an upstream answers 500 and hides the cause', async (t) => {
  const parserOnly = await startProxy({ plugins: ['head-parser', 'http-forward'] });
  try {
    const body = assertError(t, await sendAndCollect(parserOnly.port, 'GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\n\r\n'), 500, 'Internal Server Error');
    t.is(body, 'Internal Server Error\n');
  } finally {
    await parserOnly.close();
  }
});
