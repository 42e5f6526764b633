// Response framing on a kept-alive client connection: the proxy must find where each response ends
// (Content-Length, chunked, close, no-body statuses, HEAD, interim 1xx) to serve the next request.
import test from 'ava';
import { startProxy } from '../../helpers/net.js';
import { exchange, get, header, ok, startKeepAliveOrigin, withClient, type Client, type OriginRequest, type Reply } from '../../helpers/keep-alive.js';

/** An origin answering `/special` with `special`'s exact bytes and anything else `ok <path>`. */
async function originWith(special: Reply | ((request: OriginRequest) => Reply)) {
  return startKeepAliveOrigin((request) =>
    request.target === '/special' ? (typeof special === 'function' ? special(request) : special) : ok(`ok ${request.target}`),
  );
}

/** Runs `body` with a proxy, an origin and a raw client; closes them all. */
async function withSetup(
  special: Reply | ((request: OriginRequest) => Reply),
  body: (ctx: { origin: Awaited<ReturnType<typeof originWith>>; client: Client }) => Promise<void>,
) {
  const origin = await originWith(special);
  await withClient(startProxy(), [origin], (client) => body({ origin, client }));
}

test('a Content-Length body arrives whole, and the next request on the connection works', async (t) => {
  const payload = 'x'.repeat(10_000) + 'END';
  await withSetup(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\nX-Kind: cl\r\n\r\n${payload}`, async ({ origin, client }) => {
    const first = await exchange(client, get(origin.port, '/special'));
    t.is(first.status, 200);
    t.is(header(first, 'content-length'), String(payload.length));
    t.is(first.body, payload);
    const second = await exchange(client, get(origin.port, '/next'));
    t.is(second.body, 'ok /next');
  });
});

test('a chunked response with trailers arrives intact, raw, and the next request works', async (t) => {
  const chunked = '5\r\nhello\r\n6;note=x\r\n world\r\n0\r\nX-Checksum: abc123\r\nX-Other: 2\r\n\r\n';
  await withSetup(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, X-Other\r\n\r\n${chunked}`, async ({ origin, client }) => {
    const first = await exchange(client, get(origin.port, '/special'));
    t.is(first.status, 200);
    t.is(header(first, 'transfer-encoding'), 'chunked');
    t.is(first.rawBody, chunked, 'chunk framing, extension and trailers as the origin sent them');
    t.is(first.body, 'hello world');
    const second = await exchange(client, get(origin.port, '/next'));
    t.is(second.body, 'ok /next');
  });
});

test('a close-delimited response: the client gets the whole body, then the proxy closes', async (t) => {
  const payload = 'until-close:' + 'y'.repeat(5_000);
  await withSetup({ data: `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n${payload}`, end: true }, async ({ origin, client }) => {
    client.socket.write(get(origin.port, '/special'));
    const ended = await client.reader.waitEnd();
    t.true(ended, 'the proxy closes the client connection after a close-delimited response');
    const response = await client.reader.next({ timeoutMs: 100 });
    t.is(response.status, 200);
    t.is(response.body, payload);
    t.is(client.reader.pending, '');
  });
});

test('HEAD with Content-Length and no body: the next request works (the proxy did not wait for a body)', async (t) => {
  await withSetup('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n', async ({ origin, client }) => {
    const first = await exchange(client, `HEAD http://127.0.0.1:${origin.port}/special HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
    t.is(first.status, 200);
    t.is(header(first, 'content-length'), '1000');
    t.is(first.rawBody, '');
    const second = await exchange(client, get(origin.port, '/next'));
    t.is(second.status, 200);
    t.is(second.body, 'ok /next');
    t.deepEqual(origin.lines, ['HEAD /special HTTP/1.1', 'GET /next HTTP/1.1']);
  });
});

for (const [status, line] of [
  [204, 'HTTP/1.1 204 No Content\r\nX-Kind: none\r\n\r\n'],
  [304, 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 50\r\n\r\n'],
] as const) {
  test(`${status} has no body: the next request on the connection works`, async (t) => {
    await withSetup(line, async ({ origin, client }) => {
      const first = await exchange(client, get(origin.port, '/special'));
      t.is(first.status, status);
      t.is(first.rawBody, '');
      const second = await exchange(client, get(origin.port, '/next'));
      t.is(second.status, 200);
      t.is(second.body, 'ok /next');
    });
  });
}

test("Expect: 100-continue: the client gets the origin's 100, then the 200 after sending the body", async (t) => {
  const origin = await startKeepAliveOrigin((request) => ok(`got ${request.body}`), {
    onHead: (request, socket) => {
      if (request.headers.some(([name, value]) => name.toLowerCase() === 'expect' && value.toLowerCase() === '100-continue')) {
        socket.write('HTTP/1.1 100 Continue\r\n\r\n');
      }
    },
  });
  await withClient(startProxy(), [origin], async (client) => {
    client.socket.write(
      `POST http://127.0.0.1:${origin.port}/upload HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n`,
    );
    const interim = await client.reader.next();
    t.is(interim.statusLine, 'HTTP/1.1 100 Continue');
    client.socket.write('hello');
    const final = await client.reader.next({ method: 'POST' });
    t.is(final.status, 200);
    t.is(final.body, 'got hello');
    t.deepEqual(origin.lines, ['POST /upload HTTP/1.1']);
  });
});

test('103 Early Hints then 200: both reach the client, in order', async (t) => {
  const hints = 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n';
  await withSetup(hints + ok('page'), async ({ origin, client }) => {
    client.socket.write(get(origin.port, '/special'));
    const early = await client.reader.next();
    t.is(early.status, 103);
    t.is(header(early, 'link'), '</style.css>; rel=preload; as=style');
    const final = await client.reader.next();
    t.is(final.status, 200);
    t.is(final.body, 'page');
    const second = await exchange(client, get(origin.port, '/next'));
    t.is(second.body, 'ok /next');
  });
});

test('an HTTP/1.0 client gets a chunked response de-chunked, and the connection is closed after it', async (t) => {
  const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n';
  await withSetup(chunked, async ({ origin, client }) => {
    client.socket.write(`GET http://127.0.0.1:${origin.port}/special HTTP/1.0\r\n\r\n`);
    t.true(await client.reader.waitEnd(), 'the proxy closes the HTTP/1.0 connection');
    const response = await client.reader.next({ timeoutMs: 100 });
    t.is(response.status, 200);
    t.is(header(response, 'transfer-encoding'), undefined, 'no Transfer-Encoding to an HTTP/1.0 client');
    t.is(response.rawBody, 'hello, world', 'the body without chunk framing');
    t.is(client.reader.pending, '');
  });
});
