import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';
import test from 'ava';
import net from 'node:net';
import type { PluginSpec } from '../../src/core/registry.js';
import { clientEntries, type ForwardedMode } from '../../src/plugins/http-forward.plugin.js';
import { exchange, get, openClient } from '../helpers/keep-alive.js';
import { connectTo, openTunnel, proxiedRequest, readUntil, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { collect, parseResponse, recordingOrigin, sendAndCollect } from '../helpers/wire.js';

/** What the origin saw of one request. */
interface Seen {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
  body: Buffer;
  rawTrailers: string[];
}

/** A node:http origin that records every request it gets and answers `ok`. */
async function recordingHttpOrigin() {
  const seen: Seen[] = [];
  const origin = await startHttpOrigin((request: http.IncomingMessage, response: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      seen.push({
        method: request.method ?? '',
        url: request.url ?? '',
        httpVersion: request.httpVersion,
        rawHeaders: request.rawHeaders,
        body: Buffer.concat(chunks),
        rawTrailers: request.rawTrailers,
      });
      response.end('ok');
    });
  });
  return { origin, seen };
}

/** Header lines as `[name, value]` pairs from node's flat rawHeaders list. */
function pairs(rawHeaders: string[]): [string, string][] {
  const result: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) result.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  return result;
}

test('a plain GET with an absolute URL reaches the origin in origin-form', async (t) => {
  const origin = await startHttpOrigin((request, response) => {
    response.end(JSON.stringify({ url: request.url, headers: request.rawHeaders }));
  });
  const proxy = await startProxy();
  try {
    const response = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/a/b?c=1#frag`, {
      headers: { 'X-Keep-Me': 'Yes', Connection: 'x-drop', 'X-Drop': '1', 'Proxy-Connection': 'keep-alive' },
    });
    t.is(response.status, 200);
    const seen = JSON.parse(response.body.toString()) as { url: string; headers: string[] };
    t.is(seen.url, '/a/b?c=1');
    t.true(seen.headers.includes('X-Keep-Me'));
    t.false(seen.headers.includes('X-Drop'));
    t.false(seen.headers.map((h) => h.toLowerCase()).includes('proxy-connection'));
    t.is(seen.headers[seen.headers.indexOf('Via') + 1], '1.1 proxyline');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('absolute-form with an explicit port and a query becomes origin-form with the query kept', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  try {
    const { text } = await sendAndCollect(
      proxy.port,
      `GET http://127.0.0.1:${origin.port}/search/x%20y?q=a+b&r=%2F&empty= HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: close\r\n\r\n`,
    );
    t.is(parseResponse(text).statusLine, 'HTTP/1.1 200 OK');
    t.is(seen.length, 1);
    t.is(seen[0]!.url, '/search/x%20y?q=a+b&r=%2F&empty=');
    t.is(seen[0]!.method, 'GET');
    t.is(seen[0]!.httpVersion, '1.1');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('an absolute URL without a path or with only a query gets a path of /', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  try {
    const first = await sendAndCollect(proxy.port, `GET http://127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const second = await sendAndCollect(proxy.port, `GET http://127.0.0.1:${origin.port}?a=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    t.is(parseResponse(first.text).statusLine, 'HTTP/1.1 200 OK');
    t.is(parseResponse(second.text).statusLine, 'HTTP/1.1 200 OK');
    t.deepEqual(
      seen.map((s) => s.url),
      ['/', '/?a=1'],
    );
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('Host is rewritten to the URL authority even when the client sent another Host', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  try {
    const { text } = await sendAndCollect(
      proxy.port,
      `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nX-Before: 1\r\nhOsT: evil.example:81\r\nX-After: 2\r\nConnection: close\r\n\r\n`,
    );
    t.is(parseResponse(text).statusLine, 'HTTP/1.1 200 OK');
    const headers = pairs(seen[0]!.rawHeaders);
    const hosts = headers.filter(([name]) => name.toLowerCase() === 'host');
    t.deepEqual(hosts, [['hOsT', `127.0.0.1:${origin.port}`]]);
    // The Host field keeps its place between its neighbours.
    t.deepEqual(
      headers.slice(0, 3).map(([name]) => name),
      ['X-Before', 'hOsT', 'X-After'],
    );
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('hop-by-hop fields and the fields Connection names are removed; the rest pass in order and case', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  try {
    const head =
      `POST http://127.0.0.1:${origin.port}/hop HTTP/1.1\r\n` +
      `Host: 127.0.0.1:${origin.port}\r\n` +
      'X-First: one\r\n' +
      'Connection: X-Named, x-other, close\r\n' +
      'x-named: should go\r\n' +
      'X-OTHER: should go too\r\n' +
      'Proxy-Connection: keep-alive\r\n' +
      'Keep-Alive: timeout=5\r\n' +
      'Proxy-Authorization: Basic dXNlcjpwYXNz\r\n' +
      'TE: trailers\r\n' +
      'Trailer: X-Checksum\r\n' +
      'Upgrade: websocket\r\n' +
      'x-MiXeD-CaSe: Value With  Spaces\r\n' +
      'Accept: */*\r\n' +
      'Accept: text/plain\r\n' +
      'Content-Length: 3\r\n' +
      'X-Last: last\r\n' +
      '\r\nabc';
    const { text } = await sendAndCollect(proxy.port, head);
    t.is(parseResponse(text).statusLine, 'HTTP/1.1 200 OK');
    t.is(seen.length, 1);
    const headers = pairs(seen[0]!.rawHeaders);
    const names = headers.map(([name]) => name.toLowerCase());
    for (const dropped of ['x-named', 'x-other', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'te', 'trailer', 'upgrade']) {
      t.false(names.includes(dropped), `${dropped} must not be forwarded`);
    }
    // Everything else, in the order and case it was sent; then Via and X-Forwarded-For at the end.
    t.deepEqual(headers, [
      ['Host', `127.0.0.1:${origin.port}`],
      ['X-First', 'one'],
      ['x-MiXeD-CaSe', 'Value With  Spaces'],
      ['Accept', '*/*'],
      ['Accept', 'text/plain'],
      ['Content-Length', '3'],
      ['X-Last', 'last'],
      ['Via', '1.1 proxyline'],
      ['X-Forwarded-For', '127.0.0.1'],
    ]);
    t.is(seen[0]!.body.toString(), 'abc');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('Connection naming Content-Length or Host does not strip the framing fields', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  try {
    const { text } = await sendAndCollect(
      proxy.port,
      `POST http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: content-length, host\r\nContent-Length: 5\r\n\r\nhello`,
    );
    t.is(parseResponse(text).statusLine, 'HTTP/1.1 200 OK');
    t.is(seen.length, 1);
    t.is(seen[0]!.body.toString(), 'hello');
    const names = pairs(seen[0]!.rawHeaders).map(([name]) => name.toLowerCase());
    t.true(names.includes('content-length'));
    t.true(names.includes('host'));
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('Via is added, or appended to the last existing Via with the received protocol version', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  try {
    await sendAndCollect(
      proxy.port,
      `GET http://127.0.0.1:${origin.port}/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nVia: 1.0 first, 1.1 second\r\nX-A: b\r\n\r\n`,
    );
    await sendAndCollect(proxy.port, `GET http://127.0.0.1:${origin.port}/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nVia: 1.0 one\r\nVia: 1.1 two\r\n\r\n`);
    await sendAndCollect(proxy.port, `GET http://127.0.0.1:${origin.port}/3 HTTP/1.0\r\n\r\n`);
    const byUrl = new Map(seen.map((s) => [s.url, pairs(s.rawHeaders).filter(([name]) => name.toLowerCase() === 'via')]));
    t.deepEqual(byUrl.get('/1'), [['Via', '1.0 first, 1.1 second, 1.1 proxyline']]);
    t.deepEqual(byUrl.get('/2'), [
      ['Via', '1.0 one'],
      ['Via', '1.1 two, 1.1 proxyline'],
    ]);
    t.deepEqual(byUrl.get('/3'), [['Via', '1.0 proxyline']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a Content-Length body is forwarded byte for byte', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  const body = randomBytes(300_000);
  try {
    const socket = await connectTo(proxy.port);
    try {
      const result = collect(socket);
      socket.write(`PUT http://127.0.0.1:${origin.port}/upload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`);
      // In several writes, so the body spans many reads.
      for (let offset = 0; offset < body.length; offset += 70_001) socket.write(body.subarray(offset, offset + 70_001));
      const { text } = await result;
      t.is(parseResponse(text).statusLine, 'HTTP/1.1 200 OK');
    } finally {
      socket.destroy();
    }
    t.is(seen.length, 1);
    t.is(seen[0]!.body.length, body.length);
    t.true(seen[0]!.body.equals(body));
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a chunked body with a trailer is forwarded byte for byte', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  const parts = [randomBytes(1), randomBytes(4096), randomBytes(100_000), randomBytes(17)];
  const body = Buffer.concat(parts);
  try {
    const socket = await connectTo(proxy.port);
    try {
      const result = collect(socket);
      socket.write(`POST http://127.0.0.1:${origin.port}/chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`);
      for (const [i, part] of parts.entries()) {
        socket.write(Buffer.concat([Buffer.from(`${part.length.toString(16)}${i === 1 ? ';ext=1' : ''}\r\n`), part, Buffer.from('\r\n')]));
      }
      socket.write('0\r\nX-Checksum: ' + createHash('sha256').update(body).digest('hex') + '\r\n\r\n');
      const { text } = await result;
      t.is(parseResponse(text).statusLine, 'HTTP/1.1 200 OK');
    } finally {
      socket.destroy();
    }
    t.is(seen.length, 1);
    t.true(seen[0]!.body.equals(body));
    t.deepEqual(seen[0]!.rawTrailers, ['X-Checksum', createHash('sha256').update(body).digest('hex')]);
    t.true(pairs(seen[0]!.rawHeaders).some(([name, value]) => name === 'Transfer-Encoding' && value === 'chunked'));
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('an HTTP/1.0 request without Host works and is sent upstream as HTTP/1.1 with Host', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  try {
    const { text, how } = await sendAndCollect(proxy.port, `GET http://127.0.0.1:${origin.port}/old HTTP/1.0\r\nUser-Agent: old\r\n\r\n`);
    const response = parseResponse(text);
    t.regex(response.statusLine, /^HTTP\/1\.1 200 /);
    t.is(response.body, 'ok');
    t.is(how, 'end');
    t.is(seen.length, 1);
    t.is(seen[0]!.httpVersion, '1.1');
    t.is(seen[0]!.url, '/old');
    t.deepEqual(pairs(seen[0]!.rawHeaders)[0], ['Host', `127.0.0.1:${origin.port}`]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test("the client's Connection field never reaches the upstream, whatever it says", async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  try {
    await sendAndCollect(proxy.port, `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n`);
    const connection = pairs(seen[0]!.rawHeaders).filter(([name]) => name.toLowerCase() === 'connection');
    t.deepEqual(connection, []);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a request pipelined after one with Connection: close is not delivered to the origin', async (t) => {
  // A raw origin records every byte it gets, so a forwarded second request could not hide in a parser.
  const recorder = recordingOrigin('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  const origin = await startRawOrigin(recorder.onSocket);
  const proxy = await startProxy();
  try {
    const first = `GET http://127.0.0.1:${origin.port}/first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`;
    const second = `POST http://127.0.0.1:${origin.port}/second HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody`;
    const { text } = await sendAndCollect(proxy.port, first + second);
    t.is(text.split('HTTP/1.1 ').length - 1, 1, 'exactly one response');
    t.is(parseResponse(text).body, 'ok');
    t.is(recorder.connections, 1);
    const received = recorder.received[0]!.toString('latin1');
    t.true(received.startsWith('GET /first HTTP/1.1\r\n'));
    t.false(received.includes('second'));
    t.false(received.includes('body'));
    t.true(received.endsWith('\r\n\r\n'), 'only the first head, nothing after it');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a kept-alive client connection left idle is closed after keepAliveTimeoutMs', async (t) => {
  const { origin } = await recordingHttpOrigin();
  const proxy = await startProxy({
    plugins: [{ name: 'head-parser', options: { keepAliveTimeoutMs: 200 } }, 'connect-handler', 'http-forward', 'upstream-dialer'],
  });
  try {
    const socket = await connectTo(proxy.port);
    try {
      const result = collect(socket);
      socket.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n`);
      const { text, how } = await result;
      t.is(how, 'end', 'the proxy sends FIN once the connection idled');
      t.is(parseResponse(text).body, 'ok');
      t.false(parseResponse(text).headers.includes('Connection: close'), 'the response itself kept the connection');
      socket.end();
      await new Promise((resolve) => (socket.closed ? resolve(undefined) : socket.once('close', resolve)));
      t.true(socket.destroyed);
    } finally {
      socket.destroy();
    }
  } finally {
    await proxy.close();
    await origin.close();
  }
});

/** The default chain with `http-forward`'s `forwarded` option set. */
const forwardedChain = (forwarded: ForwardedMode): PluginSpec[] => [
  'head-parser',
  'connect-handler',
  { name: 'http-forward', options: { forwarded } },
  'upstream-dialer',
];

/** The X-Forwarded-For and Forwarded fields (any case) the origin saw, in order. */
const forwardingFields = (seen: Seen) => pairs(seen.rawHeaders).filter(([name]) => ['x-forwarded-for', 'forwarded'].includes(name.toLowerCase()));

test('forwarded: x-forwarded-for (the default) adds the client address, or appends it to the last X-Forwarded-For', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy();
  try {
    await sendAndCollect(proxy.port, `GET http://127.0.0.1:${origin.port}/new HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    await sendAndCollect(
      proxy.port,
      `GET http://127.0.0.1:${origin.port}/append HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\nX-A: 1\r\nx-forwarded-FOR: 198.51.100.1, 2001:db8::5\r\nX-B: 2\r\nConnection: close\r\n\r\n`,
    );
    await sendAndCollect(
      proxy.port,
      `GET http://127.0.0.1:${origin.port}/empty HTTP/1.1\r\nHost: a\r\nX-Forwarded-For:\r\nForwarded: for=192.0.2.1\r\nConnection: close\r\n\r\n`,
    );
    const byUrl = new Map(seen.map((s) => [s.url, s]));
    t.deepEqual(forwardingFields(byUrl.get('/new')!), [['X-Forwarded-For', '127.0.0.1']]);
    // The last field gets the entry; the others keep their place, case and value.
    t.deepEqual(pairs(byUrl.get('/append')!.rawHeaders).slice(1, 5), [
      ['X-Forwarded-For', '203.0.113.7'],
      ['X-A', '1'],
      ['x-forwarded-FOR', '198.51.100.1, 2001:db8::5, 127.0.0.1'],
      ['X-B', '2'],
    ]);
    // An empty field gets the address alone; Forwarded is left as it was.
    t.deepEqual(forwardingFields(byUrl.get('/empty')!), [
      ['X-Forwarded-For', '127.0.0.1'],
      ['Forwarded', 'for=192.0.2.1'],
    ]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('forwarded: each request of a kept-alive connection gets the client address once', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy({ plugins: forwardedChain('both') });
  try {
    const client = await openClient(proxy.port);
    try {
      for (const path of ['/1', '/2', '/3']) t.is((await exchange(client, get(origin.port, path))).status, 200);
    } finally {
      client.socket.destroy();
    }
    t.is(origin.connections, 1, 'one upstream connection: the requests really shared a client connection');
    t.deepEqual(
      seen.map((s) => forwardingFields(s)),
      [1, 2, 3].map(() => [
        ['X-Forwarded-For', '127.0.0.1'],
        ['Forwarded', 'for=127.0.0.1'],
      ]),
    );
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('forwarded: "forwarded" adds for=<client> (RFC 7239), or appends an element to the last Forwarded field', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const proxy = await startProxy({ plugins: forwardedChain('forwarded') });
  try {
    await sendAndCollect(proxy.port, `GET http://127.0.0.1:${origin.port}/new HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    await sendAndCollect(
      proxy.port,
      `GET http://127.0.0.1:${origin.port}/append HTTP/1.1\r\nHost: a\r\nforwarded: for=192.0.2.43;proto=http\r\nX-Forwarded-For: 203.0.113.7\r\nFORWARDED: For="[2001:db8:cafe::17]:4711"\r\nConnection: close\r\n\r\n`,
    );
    const byUrl = new Map(seen.map((s) => [s.url, s]));
    t.deepEqual(forwardingFields(byUrl.get('/new')!), [['Forwarded', 'for=127.0.0.1']], 'no X-Forwarded-For in this mode');
    t.deepEqual(forwardingFields(byUrl.get('/append')!), [
      ['forwarded', 'for=192.0.2.43;proto=http'],
      ['X-Forwarded-For', '203.0.113.7'],
      ['FORWARDED', 'For="[2001:db8:cafe::17]:4711", for=127.0.0.1'],
    ]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('forwarded: "both" appends to both fields; "none" adds nothing and passes them unchanged', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  const both = await startProxy({ plugins: forwardedChain('both') });
  const none = await startProxy({ plugins: forwardedChain('none') });
  const existing = 'X-Forwarded-For: 203.0.113.7\r\nForwarded: for=203.0.113.7\r\n';
  try {
    await sendAndCollect(both.port, `GET http://127.0.0.1:${origin.port}/both-new HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    await sendAndCollect(both.port, `GET http://127.0.0.1:${origin.port}/both-append HTTP/1.1\r\nHost: a\r\n${existing}Connection: close\r\n\r\n`);
    await sendAndCollect(none.port, `GET http://127.0.0.1:${origin.port}/none-new HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    await sendAndCollect(none.port, `GET http://127.0.0.1:${origin.port}/none-keep HTTP/1.1\r\nHost: a\r\n${existing}Connection: close\r\n\r\n`);
    const byUrl = new Map(seen.map((s) => [s.url, forwardingFields(s)]));
    t.deepEqual(byUrl.get('/both-new'), [
      ['X-Forwarded-For', '127.0.0.1'],
      ['Forwarded', 'for=127.0.0.1'],
    ]);
    t.deepEqual(byUrl.get('/both-append'), [
      ['X-Forwarded-For', '203.0.113.7, 127.0.0.1'],
      ['Forwarded', 'for=203.0.113.7, for=127.0.0.1'],
    ]);
    t.deepEqual(byUrl.get('/none-new'), []);
    t.deepEqual(byUrl.get('/none-keep'), [
      ['X-Forwarded-For', '203.0.113.7'],
      ['Forwarded', 'for=203.0.113.7'],
    ]);
  } finally {
    await both.close();
    await none.close();
    await origin.close();
  }
});

test('forwarded: a client on ::1 is written as ::1 in X-Forwarded-For and for="[::1]" in Forwarded', async (t) => {
  const { origin, seen } = await recordingHttpOrigin();
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  try {
    proxy = await startProxy({ plugins: forwardedChain('both'), host: '::1' });
  } catch (error) {
    await origin.close();
    t.log(`::1 is not available here (${(error as Error).message}); skipped`);
    t.pass();
    return;
  }
  try {
    const socket = net.connect({ host: '::1', port: proxy.port });
    socket.on('error', () => {});
    try {
      const result = collect(socket);
      socket.write(`GET http://127.0.0.1:${origin.port}/v6 HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.1\r\nConnection: close\r\n\r\n`);
      t.is(parseResponse((await result).text).statusLine, 'HTTP/1.1 200 OK');
    } finally {
      socket.destroy();
    }
    t.is(seen.length, 1);
    t.deepEqual(forwardingFields(seen[0]!), [
      ['X-Forwarded-For', '192.0.2.1, ::1'],
      ['Forwarded', 'for="[::1]"'],
    ]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test("forwarded: a CONNECT tunnel carries the client's bytes untouched, whatever the mode", async (t) => {
  const recorder = recordingOrigin();
  const origin = await startRawOrigin((socket) => {
    recorder.onSocket(socket);
    socket.on('data', () => {
      if (recorder.received[0]!.includes('\r\n\r\n') && !socket.writableEnded) socket.end('HTTP/1.1 204 No Content\r\n\r\n');
    });
  });
  const proxy = await startProxy({ plugins: forwardedChain('both') });
  try {
    const inner = `GET /inside HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n`;
    const { socket, head } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    try {
      t.is(head, 'HTTP/1.1 200 Connection Established\r\n\r\n');
      socket.write(inner);
      t.regex(await readUntil(socket, (text) => text.includes('\r\n\r\n')), /^HTTP\/1\.1 204 /);
    } finally {
      socket.destroy();
    }
    t.is(recorder.connections, 1);
    t.is(recorder.received[0]!.toString('latin1'), inner, 'the origin got exactly the tunnel bytes: no field added');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('clientEntries: IPv4, IPv6 in quotes and brackets, IPv4-mapped as IPv4, no zone, unknown for anything else', (t) => {
  t.deepEqual(clientEntries('192.0.2.43'), { xForwardedFor: '192.0.2.43', forwarded: 'for=192.0.2.43' });
  t.deepEqual(clientEntries('2001:db8::1'), { xForwardedFor: '2001:db8::1', forwarded: 'for="[2001:db8::1]"' });
  t.deepEqual(clientEntries('::1'), { xForwardedFor: '::1', forwarded: 'for="[::1]"' });
  t.deepEqual(clientEntries('::ffff:1.2.3.4'), { xForwardedFor: '1.2.3.4', forwarded: 'for=1.2.3.4' });
  t.deepEqual(clientEntries('::FFFF:1.2.3.4'), { xForwardedFor: '1.2.3.4', forwarded: 'for=1.2.3.4' });
  t.deepEqual(clientEntries('::ffff:102:304'), { xForwardedFor: '::ffff:102:304', forwarded: 'for="[::ffff:102:304]"' }, 'hex form stays IPv6');
  t.deepEqual(clientEntries('fe80::1%eth0'), { xForwardedFor: 'fe80::1', forwarded: 'for="[fe80::1]"' });
  for (const odd of ['', 'unknown', '/run/proxy.sock', '1.2.3.4\r\nX-Evil: 1', '"quoted"']) {
    t.deepEqual(clientEntries(odd), { xForwardedFor: 'unknown', forwarded: 'for=unknown' }, JSON.stringify(odd));
  }
});

test('forwarded: an unknown mode stops start-up', async (t) => {
  const error = await t.throwsAsync(startProxy({ plugins: forwardedChain('x-real-ip' as ForwardedMode) }));
  t.regex(error?.message ?? '', /options\.forwarded: expected one of "x-forwarded-for", "forwarded", "both", "none"/);
});
