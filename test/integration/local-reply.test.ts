// A plugin that answers requests itself (exchange.reply): the reply goes through the outbound
// stages like an upstream's (rewritten, counted, logged, captured, measured), the client connection
// stays open for the next request (kept-alive, pipelined, after a dropped body), a reply with a bad
// framing is refused, and replies wait for a client that does not read. Real sockets on loopback.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { Registry } from 'prom-client';
import type { Subscriber } from 'rxjs';
import { container } from 'tsyringe';
import { responseHeadEvent, type ProxyEvent } from '../../src/core/events.js';
import type { LocalReply } from '../../src/core/exchange.js';
import { localReply } from '../../src/core/local-reply.js';
import { Logger, type LogFields } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { Stage, stage } from '../../src/core/stage.js';
import type { AccessRecord } from '../../src/plugins/access-log-record.js';
import type { CaptureRecord } from '../../src/plugins/capture-record.js';
import { MetricsRegistry } from '../../src/plugins/metrics-registry.js';
import { exchange, get, header, ok, openClient, startKeepAliveOrigin, withClient } from '../helpers/keep-alive.js';
import { startProxy } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';
import { pollUntil } from '../helpers/wire.js';

/** Answers every request whose path starts with `/mock` with `reply(target)`, as a mock would. */
class MockStage extends Stage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly reply: (target: string) => LocalReply,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'request-head' && !event.exchange.answeredLocally && new URL(event.exchange.request.target).pathname.startsWith('/mock')) {
      event.exchange.reply = this.reply(event.exchange.request.target);
      event.exchange.answeredBy = 'mock';
    }
    this.emit(event);
  }
}

const teapot = (target: string) => localReply(418, { headers: { 'Content-Type': 'text/plain', 'X-Mock': 'yes' }, body: `mocked ${new URL(target).pathname}` });

const mock = (reply: (target: string) => LocalReply = teapot): ProxyPlugin => ({
  name: 'mock',
  inbound: () => stage((downstream) => new MockStage(downstream, reply)),
});

/** Adds `X-Stamp: seen` to every final response head and keeps the statuses it saw. */
class StampStage extends Stage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly seen: number[],
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind !== 'response-head' || event.head.status < 200) return this.emit(event);
    this.seen.push(event.head.status);
    this.emit(responseHeadEvent({ ...event.head, headers: [...event.head.headers, ['X-Stamp', 'seen']] }, event.exchange));
  }
}

const stamp = (seen: number[]): ProxyPlugin => ({ name: 'stamp', outbound: () => stage((downstream) => new StampStage(downstream, seen)) });

const ROUTING = ['head-parser', 'connect-handler', 'http-forward'];

/** A Logger that keeps each record's fields. */
class FieldsLogger implements Logger {
  readonly records: LogFields[] = [];
  info(message: string, fields?: LogFields): void {
    if (message === 'request' && fields) this.records.push(fields);
  }
  warn(): void {}
  error(): void {}
}

/** The value of one sample of a metric in Prometheus text (labels as given), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const originAnswer = (request: { method: string; target: string }) => ok(`origin ${request.method} ${request.target}`);

test('a reply goes through the outbound stages like an upstream response: rewritten, counted, logged, captured and measured', async (t) => {
  await withTempDir('local-reply-', async (dir) => {
    const origin = await startKeepAliveOrigin(originAnswer);
    const registry = new Registry();
    const logger = new FieldsLogger();
    const services = container.createChildContainer();
    services.registerInstance(MetricsRegistry, registry);
    services.registerInstance(Logger, logger);
    const seen: number[] = [];
    const accessLog = path.join(dir, 'access.jsonl');
    const capture = path.join(dir, 'capture.jsonl');
    const proxy = await startProxy({
      container: services,
      plugins: [
        ...ROUTING,
        mock(),
        'upstream-dialer',
        'byte-counter',
        stamp(seen), // after byte-counter: its outbound runs first, so the counts include its field
        { name: 'access-log', options: { path: accessLog } },
        'metrics',
        { name: 'capture', options: { path: capture, maxBodyBytes: 100 } },
        { name: 'logger', options: { format: 'json' } },
      ],
    });
    const responses = [];
    try {
      const client = await openClient(proxy.port);
      try {
        responses.push(await exchange(client, get(origin.port, '/mock/users')));
        responses.push(await exchange(client, get(origin.port, '/real')));
        responses.push(await exchange(client, `HEAD http://127.0.0.1:${origin.port}/mock/head HTTP/1.1\r\nHost: a\r\n\r\n`));
        responses.push(await exchange(client, get(origin.port, '/real-again')));
      } finally {
        client.socket.destroy();
      }
      t.true(await pollUntil(() => logger.records.length >= 4, 120), JSON.stringify(logger.records));
      // Closing with a grace period of 0 would cut a connection whose close the proxy has not seen yet (a record of its own).
      t.true(await pollUntil(() => proxy.server.connections === 0, 120), 'the proxy saw the client close');
      const metrics = await registry.metrics();
      t.is(sample(metrics, 'proxyline_requests_total', 'status_class="4xx"'), 2);
      t.is(sample(metrics, 'proxyline_requests_total', 'status_class="2xx"'), 2);
      t.is(sample(metrics, 'proxyline_rejections_total', 'plugin="mock"'), 2);
    } finally {
      await proxy.close(); // flushes the access log and the capture
      await origin.close();
    }
    const [mocked, real, head, realAgain] = responses;
    t.is(mocked!.status, 418);
    t.is(mocked!.statusLine, "HTTP/1.1 418 I'm a Teapot");
    t.is(mocked!.body, 'mocked /mock/users');
    t.is(header(mocked!, 'x-mock'), 'yes');
    t.is(header(mocked!, 'content-length'), String('mocked /mock/users'.length));
    t.is(header(mocked!, 'connection'), undefined, 'the connection stays open');
    t.is(real!.body, `origin GET /real`);
    t.is(head!.status, 418);
    t.is(head!.rawBody, '', 'a HEAD gets the head alone');
    t.is(header(head!, 'content-length'), String('mocked /mock/head'.length));
    t.is(realAgain!.body, 'origin GET /real-again', 'no stray HEAD body was read as this response');
    for (const response of responses) t.is(header(response, 'x-stamp'), 'seen', 'the outbound plugin saw and changed every head');
    t.deepEqual(seen, [418, 200, 418, 200]);
    t.deepEqual(
      origin.requests.map((request) => request.target),
      ['/real', '/real-again'],
    );

    const logged = readFileSync(accessLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AccessRecord);
    t.deepEqual(
      logged.map((record) => [record.method, record.status, record.answeredBy]),
      [
        ['GET', 418, 'mock'],
        ['GET', 200, undefined],
        ['HEAD', 418, 'mock'],
        ['GET', 200, undefined],
      ],
    );
    t.is(logged[0]!.bytesOut, Buffer.byteLength(mocked!.raw), 'byte-counter counted every byte of the reply, head and body');
    t.is(logged[2]!.bytesOut, Buffer.byteLength(head!.raw));
    t.is(logged[0]!.error, undefined, 'a reply is no error');
    t.deepEqual(
      logger.records.map((record) => [record.status, record.answeredBy]),
      [
        [418, 'mock'],
        [200, undefined],
        [418, 'mock'],
        [200, undefined],
      ],
    );

    const captured = readFileSync(capture, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as CaptureRecord);
    t.is(captured.length, 4);
    const first = captured[0]!;
    t.is(first.response?.status, 418);
    t.is(first.answeredBy, 'mock');
    t.true(
      first.response!.headers.some(([name, value]) => name === 'X-Stamp' && value === 'seen'),
      'the head as the client got it',
    );
    t.is(Buffer.from(first.responseBody!.base64, 'base64').toString(), 'mocked /mock/users');
    t.is(first.timings.connectMs, null, 'nothing was dialled');
  });
});

test('mocked and forwarded requests pipelined on one connection are answered in order; a dropped body leaves the next request intact', async (t) => {
  const origin = await startKeepAliveOrigin(originAnswer);
  await withClient(startProxy({ plugins: [...ROUTING, mock(), 'upstream-dialer'] }), [origin], async (client) => {
    const port = origin.port;
    const body = 'b'.repeat(60 * 1024); // under the 64 KiB a reply's request body may have and keep the connection
    const requests = [
      get(port, '/mock/1'),
      get(port, '/real/2'),
      `POST http://127.0.0.1:${port}/mock/3 HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      get(port, '/real/4'),
      `HEAD http://127.0.0.1:${port}/mock/5 HTTP/1.1\r\nHost: a\r\n\r\n`,
      get(port, '/mock/6'),
      get(port, '/real/7'),
    ];
    client.socket.write(requests.join(''));
    const bodies = [];
    for (const method of ['GET', 'GET', 'POST', 'GET', 'HEAD', 'GET', 'GET']) {
      const response = await client.reader.next({ method });
      t.is(header(response, 'connection'), undefined);
      bodies.push(response.body);
    }
    t.deepEqual(bodies, ['mocked /mock/1', 'origin GET /real/2', 'mocked /mock/3', 'origin GET /real/4', '', 'mocked /mock/6', 'origin GET /real/7']);
    t.deepEqual(
      origin.requests.map((request) => [request.target, request.body]),
      [
        ['/real/2', ''],
        ['/real/4', ''],
        ['/real/7', ''],
      ],
      'no mocked request and no byte of its body reached the origin',
    );
    t.false(client.reader.isEnded);
  });
});

test('a reply to a request with a chunked or larger body says Connection: close and the connection closes after it', async (t) => {
  const origin = await startKeepAliveOrigin(originAnswer);
  const proxy = await startProxy({ plugins: [...ROUTING, mock(), 'upstream-dialer'] });
  try {
    const chunked = `POST http://127.0.0.1:${origin.port}/mock/chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
    const large = 'x'.repeat(64 * 1024 + 1);
    const tooLarge = `PUT http://127.0.0.1:${origin.port}/mock/large HTTP/1.1\r\nHost: a\r\nContent-Length: ${large.length}\r\n\r\n${large}`;
    for (const request of [chunked, tooLarge]) {
      const client = await openClient(proxy.port);
      try {
        const response = await exchange(client, request + get(origin.port, '/real/after'));
        t.is(response.status, 418);
        t.is(header(response, 'connection'), 'close');
        t.true(await client.reader.waitEnd(), 'the proxy closed the connection');
        t.is(client.reader.pending, '', 'the request after it was not answered');
      } finally {
        client.socket.destroy();
      }
    }
    t.deepEqual(origin.requests, []);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test("a client's Connection: close, and a reply's own, close the connection after the reply", async (t) => {
  const closing = (target: string) => localReply(200, { headers: [['Connection', 'close']], body: `bye ${new URL(target).pathname}` });
  const proxy = await startProxy({
    plugins: [...ROUTING, mock((target) => (target.includes('/mock/bye') ? closing(target) : teapot(target))), 'upstream-dialer'],
  });
  try {
    for (const [request, body] of [
      [get(1, '/mock/asked', 'Connection: close\r\n'), 'mocked /mock/asked'],
      [get(1, '/mock/bye'), 'bye /mock/bye'],
    ] as const) {
      const client = await openClient(proxy.port);
      try {
        const response = await exchange(client, request);
        t.is(response.body, body);
        t.is(header(response, 'connection'), 'close');
        t.true(await client.reader.waitEnd(), 'the proxy closed the connection');
      } finally {
        client.socket.destroy();
      }
    }
  } finally {
    await proxy.close();
  }
});

test('a reply without Content-Length gets one; one that misframes its body is answered 500 and the connection goes on', async (t) => {
  const replies: Record<string, LocalReply> = {
    '/mock/unframed': { head: { version: '1.1', status: 200, reason: 'OK', headers: [['Content-Type', 'text/plain']] }, body: Buffer.from('no length given') },
    '/mock/wrong': { head: { version: '1.1', status: 200, reason: 'OK', headers: [['Content-Length', '99']] }, body: Buffer.from('short') },
    '/mock/chunked': {
      head: { version: '1.1', status: 200, reason: 'OK', headers: [['Transfer-Encoding', 'chunked']] },
      body: Buffer.from('5\r\nhello\r\n0\r\n\r\n'),
    },
    '/mock/interim': { head: { version: '1.1', status: 101, reason: 'Switching Protocols', headers: [] }, body: Buffer.alloc(0) },
    '/mock/injected': { head: { version: '1.1', status: 200, reason: 'OK', headers: [['X-Evil', 'a\r\nSet-Cookie: b']] }, body: Buffer.alloc(0) },
  };
  const origin = await startKeepAliveOrigin(originAnswer);
  const plugin = mock((target) => replies[new URL(target).pathname]!);
  await withClient(startProxy({ plugins: [...ROUTING, plugin, 'upstream-dialer'] }), [origin], async (client) => {
    const unframed = await exchange(client, get(origin.port, '/mock/unframed'));
    t.is(unframed.status, 200);
    t.is(header(unframed, 'content-length'), '15');
    t.is(unframed.body, 'no length given');
    for (const bad of ['/mock/wrong', '/mock/chunked', '/mock/interim', '/mock/injected']) {
      const response = await exchange(client, get(origin.port, bad));
      t.is(response.status, 500, bad);
      t.is(header(response, 'set-cookie'), undefined);
      t.is(header(response, 'connection'), undefined, 'a refused reply keeps the connection, like any refusal');
      t.is((await exchange(client, get(origin.port, `/real${bad}`))).body, `origin GET /real${bad}`);
    }
  });
});

test('replies wait while the client does not read: pipelined mocked requests are not all answered into its socket at once', async (t) => {
  const big = Buffer.alloc(16 * 1024 * 1024, 'm'); // more than loopback's socket buffers hold
  const count = 6;
  let answered = 0;
  let answeredWhenLastArrived = -1;
  let arrived = 0;
  const counting: ProxyPlugin = {
    name: 'counting',
    inbound: () =>
      stage(
        (downstream) =>
          new (class extends Stage {
            protected onEvent(event: ProxyEvent): void {
              if (event.kind === 'request-head' && ++arrived === count) answeredWhenLastArrived = answered;
              this.emit(event);
            }
          })(downstream),
      ),
    onExchangeEnd: () => void answered++,
  };
  const proxy = await startProxy({ plugins: [...ROUTING, counting, mock(() => localReply(200, { body: big })), 'upstream-dialer'] });
  const socket = net.connect(proxy.port, '127.0.0.1');
  socket.on('error', () => {});
  try {
    await once(socket, 'connect');
    socket.pause(); // read nothing until every request head reached the proxy
    socket.write(Array.from({ length: count }, (_, i) => get(1, `/mock/${i}`)).join(''));
    t.true(await pollUntil(() => arrived === count, 120), `arrived ${arrived}`);
    t.true(answeredWhenLastArrived <= 2, `${answeredWhenLastArrived} of ${count} replies were written into a socket nobody reads`);
    // Reading now, every reply arrives whole and in order.
    let received = 0;
    const expected = count * (big.length + `HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`.length);
    socket.on('data', (chunk: Buffer) => void (received += chunk.length));
    socket.resume();
    t.true(await pollUntil(() => received >= expected, 400), `received ${received} of ${expected} bytes`);
    t.is(received, expected);
    t.is(answered, count);
  } finally {
    socket.destroy();
    await proxy.close();
  }
});
