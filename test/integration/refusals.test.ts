// A refused well-framed request is answered in its place and the connection serves the next one;
// Max-Forwards on OPTIONS and TRACE. Real sockets on loopback.
import test, { type ExecutionContext } from 'ava';
import type { Subscriber } from 'rxjs';
import { ProxyError } from '../../src/core/errors.js';
import type { ProxyEvent } from '../../src/core/events.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { Stage, stage } from '../../src/core/stage.js';
import { exchange, get, header, ok, openClient, startKeepAliveOrigin, type WireResponse } from '../helpers/keep-alive.js';
import { closedPort, startProxy } from '../helpers/net.js';

/** Refuses (403) every request whose target contains `/deny`, as a policy plugin would. */
class DenyStage extends Stage {
  constructor(downstream: Subscriber<ProxyEvent>) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'request-head' && event.head.target.includes('/deny') && !event.exchange.answeredLocally) {
      event.exchange.error = new ProxyError('ERR_PROXY_FORBIDDEN', 'denied by test policy');
      event.exchange.answeredBy = 'deny';
    }
    this.emit(event);
  }
}

const deny: ProxyPlugin = { name: 'deny', inbound: () => stage((downstream) => new DenyStage(downstream)) };
const chain = ['head-parser', 'connect-handler', 'http-forward', deny, 'upstream-dialer'];

function assertRefusedKeepingConnection(t: ExecutionContext, response: WireResponse, status: number): void {
  t.is(response.status, status, response.raw.slice(0, 200));
  t.is(header(response, 'connection'), undefined, 'no Connection: close');
  t.is(header(response, 'content-length'), String(Buffer.byteLength(response.body)));
}

async function setUp() {
  const origin = await startKeepAliveOrigin((request) => ok(`seen ${request.method} ${request.target}`));
  const proxy = await startProxy({ plugins: chain });
  const client = await openClient(proxy.port);
  return {
    origin,
    proxy,
    client,
    close: async () => {
      client.socket.destroy();
      await proxy.close();
      await origin.close();
    },
  };
}

test('routing refusals, a refused dial and a policy refusal each leave the connection serving the next request', async (t) => {
  const { origin, client, close } = await setUp();
  const port = origin.port;
  const next = async (path: string) => {
    const response = await exchange(client, get(port, path));
    t.is(response.body, `seen GET ${path}`);
  };
  try {
    assertRefusedKeepingConnection(t, await exchange(client, 'GET /origin-form HTTP/1.1\r\nHost: a\r\n\r\n'), 400);
    await next('/after-400');
    client.socket.write('CONNECT 127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assertRefusedKeepingConnection(t, await client.reader.next(), 400);
    await next('/after-connect-400');
    const refusedPort = await closedPort();
    assertRefusedKeepingConnection(t, await exchange(client, get(refusedPort, '/')), 502);
    await next('/after-502');
    const body = 'x'.repeat(1000);
    const post = `POST http://127.0.0.1:${port}/deny HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    assertRefusedKeepingConnection(t, await exchange(client, post), 403);
    await next('/after-403');
    // A HEAD answered in place gets no body: a stray body would be read as the next response.
    const head = await exchange(client, `HEAD http://127.0.0.1:${port}/deny HTTP/1.1\r\nHost: a\r\n\r\n`);
    t.is(head.status, 403);
    t.is(head.rawBody, '');
    await next('/after-head');
    t.deepEqual(
      origin.requests.map((request) => request.target),
      ['/after-400', '/after-connect-400', '/after-502', '/after-403', '/after-head'],
      'no refused request and no byte of its body reached the origin',
    );
    t.is(origin.connections, 1, 'one kept-alive upstream served them all');
  } finally {
    await close();
  }
});

test('pipelined behind a refusal, the next request is answered in order on the same connection', async (t) => {
  const { origin, client, close } = await setUp();
  try {
    client.socket.write(get(origin.port, '/deny/1') + get(origin.port, '/ok/2'));
    assertRefusedKeepingConnection(t, await client.reader.next(), 403);
    t.is((await client.reader.next()).body, 'seen GET /ok/2');
  } finally {
    await close();
  }
});

const closing: [string, (port: number) => string][] = [
  ['its body is over 64 KiB', (port) => `POST http://127.0.0.1:${port}/deny HTTP/1.1\r\nHost: a\r\nContent-Length: ${70 * 1024}\r\n\r\n${'y'.repeat(1024)}`],
  [
    'its body is chunked (its length is unknown)',
    (port) => `POST http://127.0.0.1:${port}/deny HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n`,
  ],
  ['the client asked to close', (port) => get(port, '/deny', 'Connection: close\r\n')],
];

for (const [why, request] of closing) {
  test(`a refusal closes the connection when ${why}`, async (t) => {
    const { origin, client, close } = await setUp();
    try {
      const response = await exchange(client, request(origin.port), 'POST');
      t.is(response.status, 403);
      t.is(header(response, 'connection'), 'close');
      t.true(await client.reader.waitEnd(), 'the proxy closes the connection after the answer');
      t.is(origin.requests.length, 0);
    } finally {
      await close();
    }
  });
}

test('Max-Forwards: 0 on OPTIONS is answered by the proxy with Allow; nothing is dialled', async (t) => {
  const { origin, client, close } = await setUp();
  try {
    const response = await exchange(client, `OPTIONS http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n`);
    t.is(response.statusLine, 'HTTP/1.1 200 OK');
    t.regex(header(response, 'allow') ?? '', /\bTRACE\b/);
    t.is(header(response, 'content-length'), '0');
    t.is(origin.connections, 0);
    t.is((await exchange(client, get(origin.port, '/next'))).body, 'seen GET /next', 'the connection stays open');
  } finally {
    await close();
  }
});

test('Max-Forwards: 0 on TRACE echoes the received head as message/http, without credentials or cookies', async (t) => {
  const { origin, client, close } = await setUp();
  try {
    const sent = `TRACE http://127.0.0.1:${origin.port}/t HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\nX-Case: Kept\r\nCookie: id=1\r\nProxy-Authorization: Basic eDp5\r\nAuthorization: Basic eDp5\r\n\r\n`;
    const response = await exchange(client, sent);
    t.is(response.status, 200);
    t.is(header(response, 'content-type'), 'message/http');
    t.is(response.body, `TRACE http://127.0.0.1:${origin.port}/t HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\nX-Case: Kept\r\n\r\n`);
    t.is(origin.connections, 0);
  } finally {
    await close();
  }
});

test('Max-Forwards above 0 on OPTIONS and TRACE is decremented; OPTIONS for a whole server goes on as OPTIONS *; other methods are untouched', async (t) => {
  const { origin, client, close } = await setUp();
  try {
    await exchange(client, `TRACE http://127.0.0.1:${origin.port}/t HTTP/1.1\r\nHost: a\r\nMax-Forwards: 3\r\n\r\n`);
    await exchange(client, `OPTIONS http://127.0.0.1:${origin.port} HTTP/1.1\r\nHost: a\r\nMax-Forwards: 1\r\n\r\n`);
    await exchange(client, get(origin.port, '/g', 'Max-Forwards: 0\r\n'));
    const [trace, options, plain] = origin.requests;
    t.is(trace?.line, 'TRACE /t HTTP/1.1');
    t.is(header(trace!, 'max-forwards'), '2');
    t.is(options?.line, 'OPTIONS * HTTP/1.1');
    t.is(header(options!, 'max-forwards'), '0');
    t.is(plain?.line, 'GET /g HTTP/1.1');
    t.is(header(plain!, 'max-forwards'), '0', 'only OPTIONS and TRACE honour it');
  } finally {
    await close();
  }
});
