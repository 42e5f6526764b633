import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from 'ava';
import { Registry } from 'prom-client';
import { identity, type MonoTypeOperatorFunction, type Subscriber } from 'rxjs';
import { container as rootContainer } from 'tsyringe';
import { createAdminServer } from '../../src/admin.js';
import { AdminRoutes, AdminRouteTable } from '../../src/core/admin-routes.js';
import type { ConnectionContext } from '../../src/core/context.js';
import { ProxyError } from '../../src/core/errors.js';
import type { ProxyEvent } from '../../src/core/events.js';
import type { FaultDecision } from '../../src/core/exchange.js';
import { Logger, SilentLogger, type LogFields } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { Stage, stage } from '../../src/core/stage.js';
import { resolvePlugins, type PluginSpec } from '../../src/core/registry.js';
import type { FaultsPlugin } from '../../src/plugins/faults.plugin.js';
import { requestPath } from '../../src/plugins/faults/fault-set.js';
import type { StreamFault, StreamFaultContext } from '../../src/plugins/faults/stream-faults.js';
import { PLUGIN_CATALOG } from '../../src/plugins/index.js';
import { exchange, get, header, openClient, startKeepAliveOrigin, withClient, type Client } from '../helpers/keep-alive.js';
import { CLI } from '../helpers/cli.js';
import { connectTo, openTunnel, proxiedRequest, readAll, ROOT, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';
import { pollUntil } from '../helpers/wire.js';

/** A Logger that keeps every record. */
class KeepingLogger implements Logger {
  readonly lines: { message: string; fields?: LogFields }[] = [];
  info(message: string, fields?: LogFields): void {
    this.lines.push({ message, fields });
  }
  warn(message: string, fields?: LogFields): void {
    this.lines.push({ message, fields });
  }
  error(message: string, fields?: LogFields): void {
    this.lines.push({ message, fields });
  }
}

/** A `faults` plugin instance with validated options (resolved as plugins.json would), so a test can reach it. */
async function faultsPlugin(options: Record<string, unknown>, services: { logger?: Logger; routes?: AdminRoutes } = {}): Promise<FaultsPlugin> {
  const container = rootContainer.createChildContainer();
  container.registerInstance(Logger, services.logger ?? new SilentLogger());
  if (services.routes) container.registerInstance(AdminRoutes, services.routes);
  const [, plugin] = await resolvePlugins(['head-parser', { name: 'faults', options }], { catalog: PLUGIN_CATALOG, container, baseDir: ROOT, source: 'test' });
  return plugin as FaultsPlugin;
}

/** What the recorder keeps of each exchange when it ends. */
interface Recorded {
  /** 1, 2, … in the order the recorder saw connections. */
  connection: number;
  exchange: number;
  method: string;
  /** The request target's path (the origin's port differs from run to run). */
  path: string;
  status?: number;
  error?: string;
  faults?: FaultDecision[];
}

/** A plugin that keeps every connection's context and every exchange's faults as it ends. */
function recorder() {
  const ordinals = new WeakMap<ConnectionContext, number>();
  const contexts: ConnectionContext[] = [];
  const records: Recorded[] = [];
  const plugin: ProxyPlugin = {
    name: 'recorder',
    inbound(ctx): MonoTypeOperatorFunction<ProxyEvent> {
      contexts.push(ctx);
      ordinals.set(ctx, contexts.length);
      return identity;
    },
    onExchangeEnd(ctx, ended, error) {
      if (!ended || ended.id === 0) return;
      records.push({
        connection: ordinals.get(ctx)!,
        exchange: ended.id,
        method: ended.request.method,
        path: ended.request.method === 'CONNECT' ? ended.request.target : new URL(ended.request.target).pathname,
        status: ended.response?.status,
        error: (ended.error ?? error)?.code,
        faults: ended.faults,
      });
    },
  };
  return { plugin, contexts, records };
}

const ROUTING: PluginSpec[] = ['head-parser', 'connect-handler', 'http-forward'];

/** The chain around a faults entry: routing, faults, dialer, then the recorder (and `more`). */
const chain = (faults: PluginSpec, record: ProxyPlugin, more: PluginSpec[] = []): PluginSpec[] => [...ROUTING, faults, 'upstream-dialer', record, ...more];

/** An origin answering `hello <path>` to everything. */
const helloOrigin = () =>
  startHttpOrigin((request, response) => {
    request.resume();
    request.on('end', () => response.end(`hello ${request.url}`));
  });

/** Everything a socket receives until the peer's FIN or close (bounded by `timeoutMs`, then destroyed). */
function readToEnd(socket: import('node:net').Socket, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    };
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', done);
    socket.once('close', done);
  });
}

const names = (record: Recorded | undefined) => (record?.faults ?? []).map((fault) => fault.name);

test('abort: the proxy answers with the status and body, dials nothing, and keeps the connection for the next request', async (t) => {
  const origin = await helloOrigin();
  const record = recorder();
  const plugin = {
    name: 'faults',
    options: { seed: 1, faults: [{ name: 'flaky', type: 'abort', status: 503, body: 'injected', match: { paths: ['/fail'] } }] },
  };
  await withClient(startProxy({ plugins: chain(plugin, record.plugin) }), [origin], async (client) => {
    const failed = await exchange(client, get(origin.port, '/fail'));
    t.is(failed.status, 503);
    t.is(failed.statusLine, 'HTTP/1.1 503 Service Unavailable');
    t.is(failed.body, 'injected');
    t.is(header(failed, 'content-length'), '8');
    t.is(header(failed, 'connection'), undefined, 'the connection stays open');
    t.is(origin.connections, 0, 'nothing was dialled');
    const head = await exchange(client, `HEAD http://127.0.0.1:${origin.port}/fail HTTP/1.1\r\nHost: x\r\n\r\n`);
    t.is(head.status, 503);
    t.is(head.body, '', 'a HEAD gets the head alone');
    const next = await exchange(client, get(origin.port, '/ok'));
    t.is(next.status, 200);
    t.is(next.body, 'hello /ok');
    t.is(origin.connections, 1);
    t.deepEqual(
      record.records.map((r) => [r.exchange, r.status, names(r)]),
      [
        [1, 503, ['flaky']],
        [2, 503, ['flaky']],
        [3, 200, []],
      ],
    );
    t.deepEqual(record.records[0]!.faults, [{ name: 'flaky', type: 'abort', direction: 'upstream', params: {} }]);
    t.is(record.records[2]!.faults, undefined, 'no fault, no array');
  });
});

test('delay upstream: the request is held (its client paused) and reaches the origin after the delay', async (t) => {
  const origin = await startKeepAliveOrigin(() => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const record = recorder();
  // A long delay for the request watched while held (a slow machine must not miss it), short ones for the rest.
  const faults = [
    { name: 'slow-up', type: 'delay', delayMs: 1000, jitterMs: 50, direction: 'upstream', match: { paths: ['/a'] } },
    { name: 'quick-up', type: 'delay', delayMs: 20, direction: 'upstream', match: { paths: ['/b', '/c', '/d', '/e'] } },
  ];
  const plugin = { name: 'faults', options: { seed: 5, faults } };
  await withClient(startProxy({ plugins: chain(plugin, record.plugin) }), [origin], async (client) => {
    client.socket.write(get(origin.port, '/a'));
    t.true(await pollUntil(() => record.contexts[0]?.inboundFlow.held().includes('fault-wait') ?? false), 'the client is held');
    t.is(origin.requests.length, 0, 'nothing reached the origin while held');
    const response = await client.reader.next();
    t.is(response.status, 200);
    t.is(origin.requests.length, 1);
    t.false(record.contexts[0]!.inboundFlow.paused, 'released');
    const [decision] = record.records[0]!.faults!;
    t.is(decision!.direction, 'upstream');
    t.true(decision!.params.delayMs! >= 950 && decision!.params.delayMs! <= 1050, JSON.stringify(decision));
    t.is((await exchange(client, get(origin.port, '/b'))).status, 200, 'the next request is drawn and delayed too, then served');
    t.is(record.records[1]!.faults!.length, 1);
    // Pipelined: each request waits its own delay, behind the one before; the answers keep their order.
    client.socket.write(get(origin.port, '/c') + get(origin.port, '/d') + get(origin.port, '/e'));
    const answers = [await client.reader.next(), await client.reader.next(), await client.reader.next()];
    t.deepEqual(
      answers.map((answer) => answer.status),
      [200, 200, 200],
    );
    t.deepEqual(
      origin.requests.map((request) => request.target),
      ['/a', '/b', '/c', '/d', '/e'],
    );
    t.true(await pollUntil(() => record.records.length === 5));
    t.true(record.records.every((r) => r.faults?.length === 1));
  });
});

test('delay downstream: the origin has answered, but the response head waits (the upstream paused) before it goes to the client', async (t) => {
  let answered = 0;
  const origin = await startKeepAliveOrigin(() => {
    answered++;
    return 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
  });
  const record = recorder();
  const plugin = { name: 'faults', options: { seed: 5, faults: [{ name: 'slow-down', type: 'delay', delayMs: 1000, direction: 'downstream' }] } };
  await withClient(startProxy({ plugins: chain(plugin, record.plugin) }), [origin], async (client) => {
    client.socket.write(get(origin.port, '/a'));
    t.true(
      await pollUntil(() => answered === 1 && (record.contexts[0]?.outboundFlow.held().includes('fault-wait') ?? false)),
      'held after the origin answered',
    );
    t.is(client.reader.pending, '', 'nothing reached the client while held');
    const response = await client.reader.next();
    t.is(response.status, 200);
    t.is(response.body, 'hello');
    t.deepEqual(record.records[0]!.faults, [{ name: 'slow-down', type: 'delay', direction: 'downstream', params: { delayMs: 1000 } }]);
  });
});

test('cut-response: the client gets the head and afterBytes of the body, then the connection closes', async (t) => {
  const body = 'x'.repeat(5000);
  const origin = await startHttpOrigin((request, response) => {
    request.resume();
    response.setHeader('Content-Length', body.length);
    response.end(body);
  });
  const record = recorder();
  const plugin = { name: 'faults', options: { seed: 1, faults: [{ name: 'cut', type: 'cut-response', afterBytes: 100 }] } };
  const proxy = await startProxy({ plugins: chain(plugin, record.plugin) });
  try {
    const socket = await connectTo(proxy.port);
    const all = readToEnd(socket);
    socket.write(get(origin.port, '/big'));
    const text = (await all).toString('latin1');
    const headEnd = text.indexOf('\r\n\r\n');
    t.true(text.startsWith('HTTP/1.1 200 OK\r\n'), text.slice(0, 100));
    t.true(text.includes('Content-Length: 5000'));
    t.is(text.length - headEnd - 4, 100, 'exactly afterBytes of the body');
    t.true(await pollUntil(() => record.records.length === 1));
    t.deepEqual(names(record.records[0]), ['cut']);
    t.is(record.records[0]!.faults![0]!.direction, 'downstream');
    t.is(record.records[0]!.error, 'ERR_PROXY_ABORTED', 'the cut shows in logs and captures as a failed response');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('cut-response: a body no longer than afterBytes is not cut, and the connection stays open', async (t) => {
  const origin = await helloOrigin();
  const plugin = { name: 'faults', options: { seed: 1, faults: [{ name: 'cut', type: 'cut-response', afterBytes: 100 }] } };
  await withClient(startProxy({ plugins: [...ROUTING, plugin, 'upstream-dialer'] }), [origin], async (client) => {
    t.is((await exchange(client, get(origin.port, '/one'))).body, 'hello /one');
    t.is((await exchange(client, get(origin.port, '/two'))).body, 'hello /two');
  });
});

test('drop: the client connection closes without an answer, nothing is dialled, and the exchange is reported with its fault', async (t) => {
  const origin = await helloOrigin();
  const record = recorder();
  const plugin = { name: 'faults', options: { seed: 1, faults: [{ name: 'gone', type: 'drop' }] } };
  const proxy = await startProxy({ plugins: chain(plugin, record.plugin) });
  try {
    const socket = await connectTo(proxy.port);
    const all = readToEnd(socket);
    socket.write(get(origin.port, '/x'));
    t.is((await all).length, 0, 'no answer');
    t.is(origin.connections, 0);
    t.true(await pollUntil(() => record.records.length === 1));
    t.like(record.records[0], { exchange: 1, method: 'GET', error: 'ERR_PROXY_ABORTED', status: undefined });
    t.deepEqual(names(record.records[0]), ['gone']);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('match: hosts, methods, paths and ports must all match', async (t) => {
  const origin = await helloOrigin();
  const other = await helloOrigin();
  const faults = [
    { name: 'all-four', type: 'abort', status: 501, match: { hosts: ['127.0.0.*'], methods: ['post'], paths: ['/api/**'], ports: [origin.port] } },
    // Aborts dial nothing, so a host that does not exist can be matched.
    { name: 'by-host', type: 'abort', status: 502, match: { hosts: ['*.EXAMPLE.com'] } },
  ];
  const post = (port: number, urlPath: string) => `POST http://127.0.0.1:${port}${urlPath} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi`;
  await withClient(startProxy({ plugins: [...ROUTING, { name: 'faults', options: { faults } }, 'upstream-dialer'] }), [origin, other], async (client) => {
    t.is((await exchange(client, post(origin.port, '/api/v1/items?x=1'))).status, 501, 'all four match');
    t.is((await exchange(client, get(origin.port, '/api/v1/items'))).status, 200, 'another method');
    t.is((await exchange(client, post(origin.port, '/other'))).status, 200, 'another path');
    t.is((await exchange(client, post(other.port, '/api/v1/items'))).status, 200, 'another port');
    t.is((await exchange(client, `GET http://api.example.com/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n`)).status, 502, 'host glob, case-insensitive');
    t.is((await exchange(client, get(origin.port, '/'))).status, 200, 'another host');
  });
});

/** The statuses of `count` requests on one kept-alive connection. */
async function statuses(client: Client, port: number, count: number): Promise<number[]> {
  const found: number[] = [];
  for (let i = 0; i < count; i++) found.push((await exchange(client, get(port, `/${i}`))).status);
  return found;
}

test('probability: each request on one kept-alive connection draws for itself', async (t) => {
  const origin = await helloOrigin();
  const plugin = { name: 'faults', options: { seed: 42, faults: [{ name: 'half', type: 'abort', status: 503, probability: 0.5 }] } };
  await withClient(startProxy({ plugins: [...ROUTING, plugin, 'upstream-dialer'] }), [origin], async (client) => {
    const found = await statuses(client, origin.port, 40);
    const aborted = found.filter((status) => status === 503).length;
    t.true(aborted > 0 && aborted < 40, `503s: ${aborted} of 40`);
    t.is(found.filter((status) => status === 200).length, 40 - aborted);
  });
});

/** Runs the same sequence (two connections, several requests each) through a fresh proxy; returns what was recorded. */
async function runSequence(seed: number): Promise<{ records: Recorded[]; statuses: number[] }> {
  const origin = await startKeepAliveOrigin(() => 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789');
  const record = recorder();
  const faults = [
    { name: 'flaky', type: 'abort', status: 503, probability: 0.3 },
    { name: 'slow', type: 'delay', delayMs: 5, jitterMs: 5, probability: 0.5, direction: 'both' },
    { name: 'chunky', type: 'slicer', averageSize: 3, probability: 0.5 },
    { name: 'cut', type: 'cut-response', afterBytes: 20, probability: 0.5 },
  ];
  const proxy = await startProxy({ plugins: chain({ name: 'faults', options: { seed, faults } }, record.plugin) });
  const found: number[] = [];
  try {
    for (let connection = 0; connection < 2; connection++) {
      const client = await openClient(proxy.port);
      try {
        found.push(...(await statuses(client, origin.port, 8)));
      } finally {
        client.socket.destroy();
      }
    }
    await pollUntil(() => record.records.length === 16);
  } finally {
    await proxy.close();
    await origin.close();
  }
  return { records: record.records, statuses: found };
}

test('replay: two fresh proxies with the same seed draw the same faults for the same requests; another seed draws others', async (t) => {
  const first = await runSequence(1234);
  const second = await runSequence(1234);
  t.is(first.records.length, 16);
  t.deepEqual(second.records, first.records);
  t.deepEqual(second.statuses, first.statuses);
  t.true(
    first.records.some((r) => r.faults?.some((f) => f.name === 'flaky')),
    'some abort fired',
  );
  t.true(
    first.records.some((r) => !r.faults?.some((f) => f.name === 'flaky')),
    'not every request aborted',
  );
  const other = await runSequence(98765);
  t.notDeepEqual(
    other.records.map((r) => r.faults),
    first.records.map((r) => r.faults),
  );
});

test('a tunnel draws once, at its CONNECT, whatever flows through it', async (t) => {
  const origin = await startRawOrigin((socket) => socket.pipe(socket));
  const record = recorder();
  const faults = [{ name: 'tunnel-latency', type: 'latency', latencyMs: 1, match: { methods: ['CONNECT'] } }];
  const proxy = await startProxy({ plugins: chain({ name: 'faults', options: { seed: 3, faults } }, record.plugin) });
  try {
    const { socket, head } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    t.true(head.startsWith('HTTP/1.1 200'));
    let echoed = '';
    socket.on('data', (chunk: Buffer) => (echoed += chunk.toString('latin1')));
    // Bounded: ten writes, each waited for.
    for (let i = 0; i < 10; i++) {
      socket.write(`ping ${i};`);
      t.true(await pollUntil(() => echoed.includes(`ping ${i};`)));
    }
    socket.end();
    await once(socket, 'close');
    t.true(await pollUntil(() => record.records.length === 1));
    t.is(record.records.length, 1);
    t.deepEqual(record.records[0]!.faults, [{ name: 'tunnel-latency', type: 'latency', direction: 'downstream', params: {} }]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

/** One request to the admin listener; resolves status and the JSON answer. */
function admin(port: number, method: string, urlPath: string, body?: unknown) {
  return new Promise<{ status: number; json: Record<string, unknown> | undefined; allow?: string }>((resolve, reject) => {
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const request = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent: false }, (response) => {
      let data = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (data += chunk));
      response.on('end', () => {
        const json = response.headers['content-type']?.startsWith('application/json') ? (JSON.parse(data) as Record<string, unknown>) : undefined;
        resolve({ status: response.statusCode ?? 0, json, allow: response.headers.allow });
      });
    });
    request.on('error', reject);
    request.end(text);
  });
}

test('live control on the admin listener: PUT, POST and DELETE apply to the next requests of a connection that stays open; bad bodies are 400 with the JSON path', async (t) => {
  const origin = await helloOrigin();
  const routes = new AdminRouteTable();
  const plugin = await faultsPlugin({ seed: 9 }, { routes });
  const server = createAdminServer(new Registry(), { port: 0, routes });
  const { port: adminPort } = await server.listen();
  try {
    await withClient(startProxy({ plugins: [...ROUTING, plugin, 'upstream-dialer'] }), [origin], async (client) => {
      t.deepEqual((await admin(adminPort, 'GET', '/faults')).json, { seed: 9, faults: [] });
      t.is((await exchange(client, get(origin.port, '/a'))).status, 200);

      const added = await admin(adminPort, 'POST', '/faults', { name: 'teapot', type: 'abort', status: 418 });
      t.is(added.status, 201);
      t.deepEqual(added.json, { seed: 9, faults: [{ name: 'teapot', type: 'abort', status: 418, probability: 1 }] });
      t.is((await exchange(client, get(origin.port, '/b'))).status, 418, 'the same connection, the next request');
      t.deepEqual((await admin(adminPort, 'GET', '/faults/teapot')).json, { name: 'teapot', type: 'abort', status: 418, probability: 1 });

      const replaced = await admin(adminPort, 'PUT', '/faults', { faults: [{ name: 'gateway', type: 'abort', status: 502, match: { paths: ['/c'] } }] });
      t.is(replaced.status, 200);
      t.is((await exchange(client, get(origin.port, '/c'))).status, 502);
      t.is((await exchange(client, get(origin.port, '/d'))).status, 200, 'the new list replaced the old one');

      t.is((await admin(adminPort, 'DELETE', '/faults/gateway')).status, 200);
      t.is((await exchange(client, get(origin.port, '/c'))).status, 200);
      t.deepEqual((await admin(adminPort, 'GET', '/faults')).json, { seed: 9, faults: [] });

      const missing = await admin(adminPort, 'PUT', '/faults', {
        faults: [
          { name: 'ok', type: 'delay', delayMs: 1 },
          { name: 'bad', type: 'latency' },
        ],
      });
      t.is(missing.status, 400);
      t.is(missing.json!.error, '$.faults[1].latencyMs: expected a value, found none');
      const low = await admin(adminPort, 'POST', '/faults', { name: 'low', type: 'abort', status: 42 });
      t.is(low.status, 400);
      t.is(low.json!.error, '$.status: expected >= 200, found 42');
      const stray = await admin(adminPort, 'POST', '/faults', { name: 'stray', type: 'drop', delayMs: 5 });
      t.is(stray.json!.error, '$: expected no option "delayMs", found it set');
      const unknown = await admin(adminPort, 'POST', '/faults', { name: 'what', type: 'explode' });
      t.regex(unknown.json!.error as string, /^\$\.type: expected one of "abort", "delay", /);
      const twice = await admin(adminPort, 'PUT', '/faults', {
        faults: [
          { name: 'a', type: 'drop' },
          { name: 'a', type: 'drop' },
        ],
      });
      t.is(twice.json!.error, '$.faults[1].name: expected a unique name, found "a" (faults[0] has it)');
      t.is((await admin(adminPort, 'POST', '/faults', 'not json')).status, 400);
      t.is((await admin(adminPort, 'DELETE', '/faults/nothing')).status, 404);
      t.is((await admin(adminPort, 'PATCH', '/faults')).allow, 'GET, PUT, POST');
      t.deepEqual((await admin(adminPort, 'GET', '/faults')).json, { seed: 9, faults: [] }, 'bad bodies changed nothing');

      t.is((await admin(adminPort, 'POST', '/faults', { name: 'dup', type: 'drop', probability: 0 })).status, 201);
      t.is((await admin(adminPort, 'POST', '/faults', { name: 'dup', type: 'drop' })).status, 409);
      t.is((await exchange(client, get(origin.port, '/e'))).status, 200, 'probability 0 never fires');
    });
    t.is((await admin(adminPort, 'GET', '/faults')).status, 404, 'the route goes with the proxy');
  } finally {
    await server.close();
  }
});

test('without a seed, one is chosen, logged, and in force', async (t) => {
  const logger = new KeepingLogger();
  const plugin = await faultsPlugin({ faults: [] }, { logger });
  const logged = logger.lines.find((line) => line.message.startsWith('faults: seed '));
  t.truthy(logged, JSON.stringify(logger.lines));
  t.is(logged!.fields!.seed, plugin.current.seed);
  t.true(logged!.message.includes(`"seed": ${plugin.current.seed}`));
  const seeded = await faultsPlugin({ seed: 77 }, { logger });
  t.is(seeded.current.seed, 77);
  t.is(logger.lines.length, 1, 'a given seed is not logged');
});

test('a bad fault list stops start-up with the path of the fault', async (t) => {
  const start = (faults: unknown[]) => startProxy({ plugins: [...ROUTING, { name: 'faults', options: { faults } }, 'upstream-dialer'] });
  await t.throwsAsync(start([{ name: 'x', type: 'delay', delayMs: -1 }]), {
    message: 'plugins: plugins[3] ("faults") options.faults[0].delayMs: expected >= 0, found -1',
  });
  await t.throwsAsync(start([{ name: 'x', type: 'abort', status: 503, latencyMs: 5 }]), {
    message: 'plugins: plugins[3] ("faults") options.faults[0]: expected no option "latencyMs", found it set',
  });
  await t.throwsAsync(start([{ name: 'x', type: 'latency' }]), { message: /options\.faults\[0\]\.latencyMs: expected a value, found none$/ });
  await t.throwsAsync(start([{ name: 'x', type: 'drop', match: { paths: ['/ok', '/a['] } }]), {
    message: /cannot construct FaultsPlugin: options\.faults\[0\]\.match\.paths\[1\]: expected a glob, found "\/a\["/,
  });
  await t.throwsAsync(
    start([
      { name: 'x', type: 'drop' },
      { name: 'x', type: 'drop' },
    ]),
    { message: /options\.faults\[1\]\.name: expected a unique name, found "x"/ },
  );
});

test.serial('a client gone in the middle of a delay: the proxy closes at once and leaves no timer behind', async (t) => {
  const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
  const origin = await helloOrigin();
  const record = recorder();
  const plugin = { name: 'faults', options: { seed: 1, faults: [{ name: 'long', type: 'delay', delayMs: 600_000, direction: 'upstream' }] } };
  const before = timers();
  const proxy = await startProxy({ plugins: chain(plugin, record.plugin), gracePeriodMs: 0 });
  try {
    const socket = await connectTo(proxy.port, get(origin.port, '/'));
    t.true(await pollUntil(() => record.contexts[0]?.inboundFlow.held().includes('fault-wait') ?? false), 'held by the delay');
    // Held paused, the proxy reads nothing from the socket, so it learns of the close when it closes.
    socket.destroy();
  } finally {
    await proxy.close();
    await origin.close();
  }
  t.true(await pollUntil(() => timers() <= before), `timers: ${timers()} now, ${before} before`);
});

/**
 * A fake byte-stream fault: holds each chunk (and its source paused) for a few ms, then passes
 * it on in two halves; passes the FIN on once it holds nothing. Keeps a log of what it saw.
 */
class FakeLatency implements StreamFault {
  private readonly held: Buffer[] = [];
  private timer?: NodeJS.Timeout;
  private ended = false;

  constructor(
    private readonly ctx: StreamFaultContext,
    private readonly log: string[],
    private readonly label: string,
  ) {}

  data(chunk: Buffer): void {
    this.log.push(`${this.label} data ${chunk.length}`);
    this.held.push(chunk);
    this.ctx.hold();
    this.timer ??= setTimeout(() => this.flush(), 5);
  }

  end(): void {
    this.log.push(`${this.label} end`);
    this.ended = true;
    if (!this.timer) this.ctx.finish();
  }

  dispose(): void {
    this.log.push(`${this.label} dispose`);
    clearTimeout(this.timer);
  }

  private flush(): void {
    this.timer = undefined;
    for (const chunk of this.held.splice(0)) {
      const half = chunk.length >> 1;
      this.ctx.emit(chunk.subarray(0, half));
      this.ctx.emit(chunk.subarray(half));
    }
    this.ctx.release();
    if (this.ended) this.ctx.finish();
  }
}

/** Notes the kind (and data size) of every event passing it. */
class Tap extends Stage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly log: string[],
    private readonly prefix: string,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    this.log.push(`${this.prefix} ${event.kind}${event.kind === 'data' ? ` ${event.chunk.length}` : ''}`);
    this.emit(event);
  }
}

/** A plugin that notes every event passing its place in the chain, each way. */
function tap(log: string[], label: string): ProxyPlugin {
  return {
    name: `tap-${label}`,
    inbound: () => stage((downstream) => new Tap(downstream, log, `${label} in`)),
    outbound: () => stage((downstream) => new Tap(downstream, log, `${label} out`)),
  };
}

test('stream-fault wiring: bodies and a tunnel go through the faults that fired, in order, and a message end waits for the body the chain still holds', async (t) => {
  const log: string[] = [];
  const plugin = await faultsPlugin({
    seed: 11,
    faults: [
      { name: 'slow-both', type: 'latency', latencyMs: 5, direction: 'both' },
      { name: 'slow-down', type: 'bandwidth', bytesPerSecond: 1000, direction: 'downstream' },
    ],
  });
  const randoms: number[] = [];
  plugin.createStreamFault = (fault, ctx) => {
    randoms.push(ctx.random());
    return new FakeLatency(ctx, log, fault.name);
  };
  const events: string[] = [];
  const origin = await startKeepAliveOrigin((request) => `HTTP/1.1 200 OK\r\nContent-Length: ${request.body.length}\r\n\r\n${request.body}`);
  const echo = await startRawOrigin((socket) => socket.pipe(socket));
  const record = recorder();
  const proxy = await startProxy({ plugins: [...ROUTING, tap(events, 'before'), plugin, tap(events, 'after'), 'upstream-dialer', record.plugin] });
  try {
    const client = await openClient(proxy.port);
    try {
      const body = 'b'.repeat(3000);
      const post = `POST http://127.0.0.1:${origin.port}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const first = await exchange(client, post);
      t.is(first.body, body, 'the response body, whole and in order');
      t.is(origin.requests[0]!.body, body, 'the request body, whole and in order');
      const second = await exchange(client, get(origin.port, '/next'));
      t.is(second.status, 200, 'the connection goes on');
    } finally {
      client.socket.destroy();
    }
    // Inbound, after the faults: the message end of the POST follows all of its body.
    const inbound = events.filter((line) => line.startsWith('after in'));
    const postEnd = inbound.indexOf('after in message-end');
    const bodyBytes = inbound
      .slice(0, postEnd)
      .filter((line) => line.startsWith('after in data'))
      .reduce((sum, line) => sum + Number(line.split(' ')[3]), 0);
    t.is(bodyBytes, 3000, inbound.join('\n'));
    // Outbound, after the faults (the plugin before them in the chain sees it): the same for the response.
    const outbound = events.filter((line) => line.startsWith('before out'));
    const responseEnd = outbound.indexOf('before out message-end');
    const responseBytes = outbound
      .slice(0, responseEnd)
      .filter((line) => line.startsWith('before out data'))
      .reduce((sum, line) => sum + Number(line.split(' ')[3]), 0);
    t.is(responseBytes, 3000, outbound.join('\n'));
    t.true(log.includes('slow-both dispose') && log.includes('slow-down dispose'), 'each body chain is disposed at its message end');
    // The POST's chains: slow-both upstream; slow-both then slow-down downstream (list order).
    const made = log.filter((line) => line.endsWith(' data 3000'));
    t.deepEqual(made.slice(0, 1), ['slow-both data 3000']);
    t.true(await pollUntil(() => record.records.length === 2));
    t.deepEqual(names(record.records[0]), ['slow-both', 'slow-down']);
    t.deepEqual(
      record.records[0]!.faults!.map((fault) => fault.direction),
      ['both', 'downstream'],
    );

    // A tunnel: the chains live until its FIN, which goes through them after the bytes.
    log.length = 0;
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`);
    const echoed = readAll(socket);
    socket.end('through the tunnel');
    t.is((await echoed).toString('latin1'), 'through the tunnel', 'the bytes, then the FIN, both ways');
    t.true(log.includes('slow-both end') && log.includes('slow-down end'), log.join('\n'));
  } finally {
    await proxy.close();
    await origin.close();
    await echo.close();
  }
  t.true(randoms.every((value) => value >= 0 && value < 1));
  t.is(new Set(randoms).size, randoms.length, 'each direction of each decision has a generator of its own');
});

test('stream-fault wiring: a fault that closes fails the connection, one that resets sends the client an RST, and a cut applies to what the chain gives out', async (t) => {
  const plugin = await faultsPlugin({
    seed: 2,
    faults: [
      { name: 'closer', type: 'limit-data', bytes: 0, match: { paths: ['/close'] } },
      { name: 'resetter', type: 'reset', direction: 'upstream', match: { paths: ['/reset'] } },
      { name: 'slow', type: 'latency', latencyMs: 5, match: { paths: ['/cut'] } },
      { name: 'cut', type: 'cut-response', afterBytes: 10, match: { paths: ['/cut'] } },
    ],
  });
  const log: string[] = [];
  plugin.createStreamFault = (fault, ctx): StreamFault => {
    if (fault.type === 'latency') return new FakeLatency(ctx, log, fault.name);
    const act = fault.type === 'reset' ? () => ctx.reset() : () => ctx.close(new ProxyError('ERR_PROXY_ABORTED', 'no more data'));
    return { data: act, end: () => ctx.finish(), dispose: () => log.push(`${fault.name} dispose`) };
  };
  const origin = await startHttpOrigin((request, response) => {
    request.resume();
    request.on('end', () => response.end('z'.repeat(1000)));
  });
  const record = recorder();
  const proxy = await startProxy({ plugins: chain(plugin, record.plugin) });
  try {
    const closing = await connectTo(proxy.port);
    const closed = readToEnd(closing);
    closing.write(get(origin.port, '/close'));
    t.false((await closed).toString('latin1').includes('zzz'), 'no body byte went out');
    t.true(await pollUntil(() => record.records.some((r) => r.path === '/close')));
    t.like(
      record.records.find((r) => r.path === '/close'),
      { error: 'ERR_PROXY_ABORTED' },
    );

    const resetting = await connectTo(proxy.port);
    let code: string | undefined;
    resetting.on('error', (error: NodeJS.ErrnoException) => (code = error.code));
    const reset = readToEnd(resetting);
    resetting.write(`POST http://127.0.0.1:${origin.port}/reset HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello`);
    t.is((await reset).length, 0);
    t.is(code, 'ECONNRESET');

    const cutting = await connectTo(proxy.port);
    const cut = readToEnd(cutting);
    cutting.write(get(origin.port, '/cut'));
    const text = (await cut).toString('latin1');
    t.is(text.slice(text.indexOf('\r\n\r\n') + 4), 'z'.repeat(10), 'the cut counts what the latency fault gave out');
    t.true(log.includes('slow dispose'));
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('requestPath: origin-form and absolute-form paths without the query; none for authority-form and *', (t) => {
  t.is(requestPath('/a/b?c=/d'), '/a/b');
  t.is(requestPath('/'), '/');
  t.is(requestPath('http://h:1/a/b?c'), '/a/b');
  t.is(requestPath('http://h:1'), '/');
  t.is(requestPath('http://h?q=/x'), '/');
  t.is(requestPath('h:443'), undefined);
  t.is(requestPath('*'), undefined);
});

test('logger and access-log show the names of the faults that fired (the CLF formats unchanged)', async (t) => {
  await withTempDir('faults-', async (dir) => {
    const file = path.join(dir, 'access.log');
    const clf = path.join(dir, 'common.log');
    const logger = new KeepingLogger();
    const origin = await helloOrigin();
    const child = rootContainer.createChildContainer();
    child.registerInstance(Logger, logger);
    const faults = [
      { name: 'teapot', type: 'abort', status: 418, match: { paths: ['/tea'] } },
      { name: 'wait', type: 'delay', delayMs: 1, match: { paths: ['/tea'] } },
    ];
    const plugins: PluginSpec[] = [
      ...ROUTING,
      { name: 'faults', options: { seed: 1, faults } },
      'upstream-dialer',
      'byte-counter',
      { name: 'logger', options: { format: 'text' } },
      { name: 'access-log', options: { path: file } },
      { name: 'access-log', options: { path: clf, format: 'common' } },
    ];
    await withClient(startProxy({ plugins, container: child }), [origin], async (client) => {
      t.is((await exchange(client, get(origin.port, '/tea'))).status, 418);
      t.is((await exchange(client, get(origin.port, '/coffee'))).status, 200);
      client.socket.end();
      t.true(await client.reader.waitEnd());
    });
    const text = logger.lines.map((line) => line.message).filter((message) => message.startsWith('#'));
    t.is(text.length, 2, text.join('\n'));
    t.true(text[0]!.endsWith(' faults=teapot,wait'), text[0]);
    t.false(text[1]!.includes('faults='), text[1]);
    const records = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    t.deepEqual(
      records.map((r) => r.faults),
      [['teapot', 'wait'], undefined],
    );
    const common = readFileSync(clf, 'utf8').trim().split('\n');
    t.is(common.length, 2);
    t.false(common.some((line) => line.includes('teapot')));
  });
});

test('the CLI: without a seed one is logged, and /faults on the admin listener changes what the proxy does', async (t) => {
  await withTempDir('faults-cli-', async (dir) => {
    const origin = await helloOrigin();
    const config = path.join(dir, 'plugins.json');
    writeFileSync(config, JSON.stringify({ plugins: [...ROUTING.map((name) => ({ name })), { name: 'faults' }, { name: 'upstream-dialer' }] }));
    const child = spawn(process.execPath, [CLI, '--port', '0', '--admin-port', '0', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      t.true(await pollUntil(() => /admin on http:\/\/127\.0\.0\.1:\d+\n/.test(stdout), 400), stdout + stderr);
      const [, proxyPort, adminPort] = /listening on http:\/\/127\.0\.0\.1:(\d+)\nproxyline admin on http:\/\/127\.0\.0\.1:(\d+)\n/.exec(stdout)!.map(Number);
      const seed = Number(/info faults: seed (\d+)/.exec(stderr)?.[1]);
      t.true(Number.isInteger(seed), stderr);
      t.deepEqual((await admin(adminPort!, 'GET', '/faults')).json, { seed, faults: [] });
      t.is((await proxiedRequest(proxyPort!, `http://127.0.0.1:${origin.port}/`)).status, 200);
      t.is((await admin(adminPort!, 'POST', '/faults', { name: 'down', type: 'abort', status: 503 })).status, 201);
      t.is((await proxiedRequest(proxyPort!, `http://127.0.0.1:${origin.port}/`)).status, 503);
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      t.is(code, 0);
    } finally {
      clearTimeout(timer);
      child.kill('SIGKILL');
      await origin.close();
    }
  });
});
