// The capture plugin on real loopback sockets: one CaptureRecord line per request (at its response's
// end), per tunnel (at close) and per failure outside any request, with both heads, timings, bytes
// and ordinals; bodies up to maxBodyBytes; no stage without bodies; rotation by size keeping
// maxFiles files, each record in exactly one; a stalled FIFO drops and counts records and close()
// stays bounded.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { identity, tap } from 'rxjs';
import { ConnectionContext } from '../../src/core/context.js';
import { ProxyError } from '../../src/core/errors.js';
import { SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import type { PluginSpec } from '../../src/core/registry.js';
import { createStats, type ProxyStats } from '../../src/core/stats.js';
import { RotatingFile, rotatedPath } from '../../src/plugins/capture-file.js';
import type { CaptureRecord } from '../../src/plugins/capture-record.js';
import { CapturePlugin, type CaptureOptions } from '../../src/plugins/capture.plugin.js';
import { parseJsonLines, readAvailable, RecordingLogger, ROUTING, sendPaddedRequests, withFifoLog } from '../helpers/access-log.js';
import { exchange, get, ok, openClient, sleep, startKeepAliveOrigin, withClient } from '../helpers/keep-alive.js';
import { closedPort, rawExchange, startProxy, startRawOrigin } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';
import { pollUntil } from '../helpers/wire.js';

/** A chain that forwards, counts bytes, then captures to `file` (with more capture `options`). */
const captureChain = (file: string, options: Record<string, unknown> = {}): PluginSpec[] => [
  ...ROUTING,
  'upstream-dialer',
  'byte-counter',
  { name: 'capture', options: { path: file, ...options } },
];

/** The file's records once it has `count` complete lines (bounded wait: a last async write may land just after close). */
async function records(file: string, count: number): Promise<CaptureRecord[]> {
  const read = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  await pollUntil(() => read().length >= count, 80);
  return read().map((line) => JSON.parse(line) as CaptureRecord);
}

const header = (headers: [string, string][] | undefined, name: string) => headers?.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
const base64 = (text: string) => Buffer.from(text, 'latin1').toString('base64');

function assertTimings(t: ExecutionContext, record: CaptureRecord): void {
  const { connectMs, firstByteMs, endMs } = record.timings;
  for (const value of [connectMs, firstByteMs, endMs]) {
    t.is(typeof value, 'number', JSON.stringify(record.timings));
    t.true(value! >= 0 && Math.round(value! * 10) / 10 === value, JSON.stringify(record.timings));
  }
  t.true(connectMs! <= firstByteMs! && firstByteMs! <= endMs, JSON.stringify(record.timings));
}

test('kept-alive requests: one record each, in order, with the heads as sent and as got, upstream, reuse, timings, bytes and ordinals', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const file = path.join(dir, 'capture.jsonl');
    // Keep-Alive is hop-by-hop: http-forward drops it, so the record shows the head the client got.
    const replies: Record<string, string> = {
      '/one': ok('a'.repeat(3000), 'Keep-Alive: timeout=60\r\n'),
      '/two': ok('b'.repeat(700)),
      '/three': ok('c'),
    };
    const origin = await startKeepAliveOrigin((request) => replies[request.target] ?? ok('?'));
    const post = `POST http://127.0.0.1:${origin.port}/one HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nhello`;
    let ports: number[] = [];
    await withClient(startProxy({ plugins: captureChain(file) }), [origin], async (client, proxy) => {
      t.is((await exchange(client, post)).body.length, 3000);
      t.is((await exchange(client, get(origin.port, '/two'))).body.length, 700);
      const second = await openClient(proxy.port);
      try {
        t.is((await exchange(second, get(origin.port, '/three', 'Connection: close\r\n'))).body, 'c');
        ports = [client.socket.localPort!, second.socket.localPort!];
      } finally {
        second.socket.destroy();
      }
      client.socket.end();
      await client.reader.waitEnd();
    });
    const all = await records(file, 3);
    t.is(all.length, 3, JSON.stringify(all));
    const [one, two, three] = all as [CaptureRecord, CaptureRecord, CaptureRecord];
    t.like(one, { v: 1, kind: 'http', connection: 1, exchange: 1, client: { address: '127.0.0.1', port: ports[0] }, reused: false });
    t.like(two, { v: 1, kind: 'http', connection: 1, exchange: 2, reused: true });
    t.like(three, { v: 1, kind: 'http', connection: 2, exchange: 1, client: { port: ports[1] }, reused: true });
    t.deepEqual(one.request, {
      method: 'POST',
      target: `http://127.0.0.1:${origin.port}/one`,
      version: '1.1',
      headers: [
        ['Host', `127.0.0.1:${origin.port}`],
        ['Content-Length', '5'],
        ['X-Test', 'yes'],
      ],
    });
    t.like(one.response, { version: '1.1', status: 200, reason: 'OK' });
    t.is(header(one.response?.headers, 'content-length'), '3000');
    t.is(header(one.response?.headers, 'keep-alive'), undefined, 'the hop-by-hop field the client never got');
    t.is(header(one.response?.headers, 'via'), '1.1 proxyline', 'the field http-forward added');
    t.is(header(three.response?.headers, 'connection'), 'close', "the proxy's own Connection field");
    for (const record of all) {
      t.deepEqual(record.upstream, { host: '127.0.0.1', port: origin.port });
      t.deepEqual(record.faults, []);
      t.false('requestBody' in record || 'responseBody' in record, 'no bodies with maxBodyBytes 0');
      t.is(record.answeredBy, undefined);
      t.is(record.error, undefined);
      assertTimings(t, record);
      t.true(Math.abs(Date.parse(record.startedAt) - Date.now()) < 60_000, record.startedAt);
      t.is(new Date(record.startedAt).toISOString(), record.startedAt);
    }
    t.true(Date.parse(one.startedAt) <= Date.parse(two.startedAt));
    // byte-counter's counts: what the origin received (on the pooled connections) and sent.
    t.is(one.bytes.in + two.bytes.in + three.bytes.in, origin.received.join('').length);
    t.is(one.bytes.out, replies['/one']!.length);
    t.is(two.bytes.out, replies['/two']!.length);
  });
});

test('a CONNECT tunnel: one tunnel record when it closes, and with maxBodyBytes the first bytes each way', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const file = path.join(dir, 'capture.jsonl');
    const origin = await startRawOrigin((socket) => socket.pipe(socket));
    const authority = `127.0.0.1:${origin.port}`;
    const payload = 'ping-through-tunnel';
    await withClient(startProxy({ plugins: captureChain(file, { maxBodyBytes: 8 }) }), [origin], async (client, proxy) => {
      client.socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      t.is((await client.reader.next({ method: 'HEAD' })).status, 200);
      client.socket.write(payload);
      t.true(await pollUntil(() => client.reader.pending === payload, 120), 'the tunnel echoes');
      client.socket.end();
      t.true(await client.reader.waitEnd());
      t.true(await pollUntil(() => proxy.server.connections === 0, 120));
    });
    const all = await records(file, 1);
    t.is(all.length, 1, JSON.stringify(all));
    const [record] = all as [CaptureRecord];
    t.like(record, {
      kind: 'tunnel',
      connection: 1,
      exchange: 1,
      request: { method: 'CONNECT', target: authority, version: '1.1' },
      response: { status: 200 },
      upstream: { host: '127.0.0.1', port: origin.port },
      reused: false,
    });
    t.deepEqual(record.requestBody, { base64: base64(payload.slice(0, 8)), truncated: true });
    t.deepEqual(record.responseBody, { base64: base64(payload.slice(0, 8)), truncated: true });
    t.true(record.bytes.in >= payload.length && record.bytes.out >= payload.length, JSON.stringify(record.bytes));
    t.is(record.error, undefined);
    t.is(typeof record.timings.endMs, 'number');
  });
});

test('a request refused by a policy plugin: its 403 as the client got it, answeredBy and the error; no upstream contacted', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const file = path.join(dir, 'capture.jsonl');
    const origin = await startKeepAliveOrigin(() => ok('should not be reached'));
    const policy: ProxyPlugin = {
      name: 'test-policy',
      inbound: () =>
        tap((event) => {
          if (event.kind !== 'request-head') return;
          event.exchange.error = new ProxyError('ERR_PROXY_FORBIDDEN', 'not allowed');
          event.exchange.answeredBy = 'test-policy';
        }),
    };
    const proxy = await startProxy({ plugins: [...ROUTING, policy, 'upstream-dialer', 'byte-counter', { name: 'capture', options: { path: file } }] });
    try {
      t.regex(await rawExchange(proxy.port, get(origin.port, '/secret'), { end: true }), /^HTTP\/1\.1 403 /);
      t.is(origin.received.length, 0);
    } finally {
      await proxy.close();
      await origin.close();
    }
    const [record, ...rest] = await records(file, 1);
    t.is(rest.length, 0);
    t.like(record, {
      kind: 'http',
      exchange: 1,
      request: { method: 'GET', target: `http://127.0.0.1:${origin.port}/secret` },
      response: { status: 403, reason: 'Forbidden' },
      answeredBy: 'test-policy',
      error: { code: 'ERR_PROXY_FORBIDDEN', message: 'not allowed' },
      timings: { connectMs: null, firstByteMs: null },
      reused: false,
    });
    t.is(header(record!.response!.headers, 'content-type'), 'text/plain; charset=utf-8');
    t.true(record!.bytes.out > 0, 'the answer was counted');
  });
});

test('a failed dial: an http record with the 502 and its error', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const file = path.join(dir, 'capture.jsonl');
    const port = await closedPort();
    const proxy = await startProxy({ plugins: captureChain(file) });
    try {
      t.regex(await rawExchange(proxy.port, get(port, '/'), { end: true }), /^HTTP\/1\.1 502 /);
    } finally {
      await proxy.close();
    }
    const [record] = await records(file, 1);
    t.like(record, {
      kind: 'http',
      request: { method: 'GET', target: `http://127.0.0.1:${port}/` },
      response: { status: 502 },
      upstream: { host: '127.0.0.1', port },
      error: { code: 'ERR_PROXY_UPSTREAM_CONNECT' },
      timings: { connectMs: null },
    });
  });
});

test('a failure outside any request (a malformed head): a failure record, exchange 0, no request, the 400 the client got', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const file = path.join(dir, 'capture.jsonl');
    const proxy = await startProxy({ plugins: captureChain(file, { maxBodyBytes: 64 }) });
    try {
      t.regex(await rawExchange(proxy.port, 'GET\x01 / HTTP/1.1\r\n\r\n', { end: true }), /^HTTP\/1\.1 400 /);
    } finally {
      await proxy.close();
    }
    const [record, ...rest] = await records(file, 1);
    t.is(rest.length, 0);
    t.like(record, {
      v: 1,
      kind: 'failure',
      connection: 1,
      exchange: 0,
      request: null,
      response: { status: 400, reason: 'Bad Request' },
      upstream: null,
      reused: false,
      error: { code: 'ERR_PROXY_BAD_REQUEST' },
      timings: { connectMs: null, firstByteMs: null },
    });
    t.is(header(record!.response!.headers, 'connection'), 'close');
    t.false('requestBody' in record! || 'responseBody' in record!, 'no bodies without a request');
    t.deepEqual(record!.faults, []);
  });
});

test('bodies: request and response bytes up to maxBodyBytes as they passed, chunk framing included, truncated beyond', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const file = path.join(dir, 'capture.jsonl');
    const chunkedReply = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n';
    const replies: Record<string, string> = { '/exact': ok('short'), '/long': ok('r'.repeat(100)), '/chunked': chunkedReply, '/empty': ok('') };
    const origin = await startKeepAliveOrigin((request) => replies[request.target] ?? ok('?'));
    const host = `127.0.0.1:${origin.port}`;
    const post = (target: string, framing: string, body: string) => `POST http://${host}${target} HTTP/1.1\r\nHost: ${host}\r\n${framing}\r\n\r\n${body}`;
    const chunkedBody = '15\r\nhello world, chunked!\r\n0\r\n\r\n';
    await withClient(startProxy({ plugins: captureChain(file, { maxBodyBytes: 16 }) }), [origin], async (client) => {
      t.is((await exchange(client, post('/exact', 'Content-Length: 16', 'abcdefghijklmnop'))).body, 'short');
      t.is((await exchange(client, post('/long', 'Content-Length: 40', 'q'.repeat(40)))).body.length, 100);
      t.is((await exchange(client, post('/chunked', 'Transfer-Encoding: chunked', chunkedBody))).status, 200);
      t.is((await exchange(client, get(origin.port, '/empty'))).status, 200);
      client.socket.end();
      await client.reader.waitEnd();
    });
    t.is(origin.requests.find((request) => request.target === '/chunked')?.body, 'hello world, chunked!');
    const all = await records(file, 4);
    t.deepEqual(
      all.map((record) => [record.exchange, record.requestBody, record.responseBody]),
      [
        [1, { base64: base64('abcdefghijklmnop'), truncated: false }, { base64: base64('short'), truncated: false }],
        [2, { base64: base64('q'.repeat(16)), truncated: true }, { base64: base64('r'.repeat(16)), truncated: true }],
        [
          3,
          { base64: base64(chunkedBody.slice(0, 16)), truncated: true },
          { base64: base64('4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n'.slice(0, 16)), truncated: true },
        ],
        [4, { base64: '', truncated: false }, { base64: '', truncated: false }],
      ],
    );
  });
});

/** The plugin built by hand, as the registry would, with its file in `dir`. */
function capturePlugin(dir: string, options: Partial<CaptureOptions>): CapturePlugin {
  const defaults: CaptureOptions = { path: 'capture.jsonl', maxBodyBytes: 0, maxFileBytes: 104857600, maxFiles: 5, maxBufferBytes: 16777216 };
  return new CapturePlugin({ ...defaults, ...options }, dir, createStats(), new SilentLogger());
}

test('without bodies the plugin adds no stage (inbound is identity, no outbound); with them it has both', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const ctx = new ConnectionContext(1, new PassThrough(), { address: '127.0.0.1', port: 1 }, performance.now());
    const plain = capturePlugin(dir, { maxBodyBytes: 0 });
    const bodies = capturePlugin(dir, { path: 'bodies.jsonl', maxBodyBytes: 8 });
    try {
      t.is(plain.outbound, undefined);
      t.is(plain.inbound(ctx), identity);
      t.is(typeof bodies.outbound, 'function');
      t.not(bodies.inbound(ctx), identity);
    } finally {
      await plain.dispose();
      await bodies.dispose();
    }
  });
});

/** The kept files of `file`, oldest first, and the names of every file in its folder. */
function keptFiles(file: string): { kept: string[]; names: string[] } {
  const names = readdirSync(path.dirname(file)).sort();
  const kept: string[] = [];
  for (let index = 100; index >= 1; index--) if (existsSync(rotatedPath(file, index))) kept.push(rotatedPath(file, index));
  if (existsSync(file)) kept.push(file);
  return { kept, names };
}

/** Sends `count` GETs on one kept-alive connection, each `/r/<i>` with a filler; how many were answered 200. */
async function sendNumbered(proxyPort: number, originPort: number, count: number, filler = ''): Promise<number> {
  const client = await openClient(proxyPort);
  let answered = 0;
  try {
    for (let i = 1; i <= count; i++) {
      if ((await exchange(client, get(originPort, `/r/${i}${filler}`))).status === 200) answered++;
    }
    client.socket.end();
    await client.reader.waitEnd();
  } finally {
    client.socket.destroy();
  }
  return answered;
}

/** Runs a proxy capturing to `<dir>/capture.jsonl` with `options`, sends `count` numbered requests, closes; the stats it counted into. */
async function captureNumbered(dir: string, options: Record<string, unknown>, count: number): Promise<ProxyStats> {
  const origin = await startKeepAliveOrigin(() => ok('fine'));
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  try {
    proxy = await startProxy({ plugins: captureChain(path.join(dir, 'capture.jsonl'), options) });
    if ((await sendNumbered(proxy.port, origin.port, count, '/' + 'f'.repeat(200))) !== count) throw new Error('not every request was answered');
  } finally {
    await proxy?.close();
    await origin.close();
  }
  return proxy.server.stats;
}

const numberOf = (record: CaptureRecord) => Number(/\/r\/(\d+)\//.exec(record.request!.target)![1]);

test('rotation: every record lands exactly once, in order, across files no larger than maxFileBytes', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const file = path.join(dir, 'capture.jsonl');
    const count = 60;
    // Batches of 16 KiB (a quarter of the cap): several records per file, several batches per file set.
    const stats = await captureNumbered(dir, { maxFileBytes: 4096, maxFiles: 100, maxBufferBytes: 65536 }, count);
    t.is(stats.captureDropped, 0);
    const { kept, names } = keptFiles(file);
    t.true(kept.length >= 5, `rotated several times: ${names.join(' ')}`);
    t.is(names.length, kept.length, `only capture files: ${names.join(' ')}`);
    const numbers: number[] = [];
    for (const name of kept) {
      t.true(statSync(name).size <= 4096, `${name}: ${statSync(name).size} bytes`);
      const text = readFileSync(name, 'utf8');
      t.true(text.endsWith('\n'), `${name} ends with a whole line`);
      for (const line of text.split('\n').filter(Boolean)) numbers.push(numberOf(JSON.parse(line) as CaptureRecord));
    }
    t.deepEqual(
      numbers,
      Array.from({ length: count }, (_, i) => i + 1),
    );
  });
});

test('rotation keeps at most maxFiles files: the newest records, each once and in order; the oldest rotated away', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const file = path.join(dir, 'capture.jsonl');
    const count = 60;
    const stats = await captureNumbered(dir, { maxFileBytes: 4096, maxFiles: 3, maxBufferBytes: 65536 }, count);
    t.is(stats.captureDropped, 0);
    const { kept, names } = keptFiles(file);
    t.deepEqual(names, ['capture.1.jsonl', 'capture.2.jsonl', 'capture.jsonl']);
    const numbers = kept.flatMap((name) =>
      readFileSync(name, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => numberOf(JSON.parse(line) as CaptureRecord)),
    );
    const first = numbers[0]!;
    t.true(first > 1, 'the oldest records were rotated away');
    t.deepEqual(
      numbers,
      Array.from({ length: count - first + 1 }, (_, i) => first + i),
      'the rest: each once, in order, up to the last',
    );
  });
});

test('RotatingFile: a line longer than a file goes alone into one, an oversized file at start is rotated first, maxFiles 1 keeps only the current file', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const file = path.join(dir, 'c.jsonl');
    writeFileSync(file, 'old-1\nold-2\n');
    const losses: [number, string][] = [];
    const limits = { maxFileBytes: 8, maxFiles: 3, maxBufferBytes: 65536 };
    const rotating = new RotatingFile(file, limits, (records, cause) => losses.push([records, cause]), new SilentLogger(), 'capture');
    rotating.write(Buffer.from('a\nthis-is-long\nb\n'));
    rotating.write(Buffer.from('cc\ndd\n'));
    await rotating.close(2000);
    t.deepEqual(losses, []);
    // Newest first: c.jsonl, c.1.jsonl, c.2.jsonl; `old` (12 bytes, over 8) was rotated at the first write, then rotated away.
    t.deepEqual(readdirSync(dir).sort(), ['c.1.jsonl', 'c.2.jsonl', 'c.jsonl']);
    t.is(readFileSync(file, 'utf8'), 'b\ncc\ndd\n');
    t.is(readFileSync(rotatedPath(file, 1), 'utf8'), 'this-is-long\n');
    t.is(readFileSync(rotatedPath(file, 2), 'utf8'), 'a\n');

    const single = path.join(dir, 's.log');
    const one = new RotatingFile(single, { ...limits, maxFiles: 1 }, (records, cause) => losses.push([records, cause]), new SilentLogger(), 'capture');
    one.write(Buffer.from('1111\n2222\n3333\n'));
    await one.close(2000);
    t.deepEqual(losses, []);
    t.is(readFileSync(single, 'utf8'), '3333\n');
    t.false(existsSync(rotatedPath(single, 1)));
    t.is(rotatedPath(single, 1), path.join(dir, 's.1.log'));
    t.is(rotatedPath(path.join(dir, 'plain'), 2), path.join(dir, 'plain.2'));
  });
});

test('RotatingFile: a fresh file that cannot be opened drops and reports what waited, and a write a second later opens it again', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const sub = path.join(dir, 'sub');
    mkdirSync(sub);
    const file = path.join(sub, 'c.jsonl');
    const losses: [number, string][] = [];
    const logger = new RecordingLogger();
    const rotating = new RotatingFile(
      file,
      { maxFileBytes: 8, maxFiles: 2, maxBufferBytes: 65536 },
      (records, cause) => losses.push([records, cause]),
      logger,
      'capture',
    );
    try {
      rmSync(sub, { recursive: true }); // the folder goes: the rotation finds no file to rename, and cannot open a new one
      rotating.write(Buffer.from('1111\n2222\n'));
      t.true(await pollUntil(() => losses.length > 0, 120), 'the loss was reported');
      t.deepEqual(losses, [[1, 'ENOENT']], "the record that waited for the new file (the first went to the old one's descriptor)");
      t.true(
        logger.warnings.some((warning) => /^capture: cannot open .*c\.jsonl/.test(warning)),
        JSON.stringify(logger.warnings),
      );
      rotating.write(Buffer.from('3333\n'));
      t.deepEqual(losses.at(-1), [1, 'ENOENT'], 'dropped at once while the retry waits');
      mkdirSync(sub);
      await sleep(1100); // past the retry delay: the next write opens the file again
      rotating.write(Buffer.from('4444\n'));
    } finally {
      await rotating.close(2000);
    }
    t.is(losses.length, 2);
    t.is(readFileSync(file, 'utf8'), '4444\n');
  });
});

const STALL_REQUESTS = 240;
const CAP = 64 * 1024;

test('a FIFO nobody reads: past maxBufferBytes records are dropped and counted (captureDropped), every request is answered, memory stays under the cap', async (t) => {
  await withFifoLog(
    CAP,
    async ({ proxy, stats, logger, origin, reader, capacity }) => {
      t.is(await sendPaddedRequests(proxy.port, origin.port, STALL_REQUESTS, 'stall'), STALL_REQUESTS, 'the proxy answered every request');
      t.true(stats.captureDropped > 0, 'records were dropped');
      t.true(stats.captureDropped < STALL_REQUESTS, `only those over the cap: ${stats.captureDropped}`);
      t.is(stats.logDropped, 0, "access-log's counter is not capture's");
      t.is(logger.warnings.length, 1, 'one warning, however many drops');
      t.regex(logger.warnings[0]!, /^capture: \d+ records dropped since the last warning \(the destination cannot keep up/);
      const chunks: Buffer[] = [];
      const drained = pollUntil(() => readAvailable(reader, chunks), 800, 10);
      await proxy.close();
      t.true(await drained, 'the proxy closed its side of the FIFO');
      const written = parseJsonLines<CaptureRecord>(chunks);
      t.is(written.length + stats.captureDropped, STALL_REQUESTS, 'every record was written or counted as dropped');
      t.true(written.every((record) => record.kind === 'http' && record.response?.status === 200 && record.request!.target.includes('/stall/')));
      // Nothing was read until close: all that was written sat in the pipe or under the cap.
      t.true(Buffer.concat(chunks).length <= capacity + CAP, `${Buffer.concat(chunks).length} bytes written, pipe ${capacity} + cap ${CAP}`);
    },
    captureChain,
  );
});

test('a FIFO never read: close() stops waiting after its bound and counts what was not written', async (t) => {
  await withFifoLog(
    CAP,
    async ({ proxy, stats, logger, origin, reader, capacity }) => {
      t.is(await sendPaddedRequests(proxy.port, origin.port, STALL_REQUESTS, 'stall'), STALL_REQUESTS);
      const closed = await Promise.race([proxy.close().then(() => true), sleep(20_000).then(() => false)]);
      t.true(closed, 'close() resolved although the FIFO was never read');
      t.regex(logger.warnings.at(-1)!, /^capture: \d+ records dropped since the last warning \(reported at shutdown\)/);
      const chunks: Buffer[] = [];
      t.true(await pollUntil(() => readAvailable(reader, chunks), 400, 10), 'the proxy closed its side of the FIFO');
      t.true(Buffer.concat(chunks).length <= capacity);
      t.is(parseJsonLines<CaptureRecord>(chunks).length + stats.captureDropped, STALL_REQUESTS, 'every record was written or counted as dropped');
    },
    captureChain,
  );
});

test('a path that cannot be opened stops start-up with a configuration error', async (t) => {
  await withTempDir('capture-', async (dir) => {
    const error = await t.throwsAsync(startProxy({ plugins: captureChain(path.join(dir, 'missing', 'capture.jsonl')) }));
    t.is((error as ProxyError).code, 'ERR_PROXY_CONFIG');
    t.regex(error.message, /capture.*ENOENT/);
  });
});
