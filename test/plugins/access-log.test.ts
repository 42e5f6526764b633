// The access-log plugin on real loopback sockets: one record per request (at its response's end),
// one per tunnel (at close), one for a failure outside any request; JSON, common and combined
// formats; the file is flushed when the proxy closes (dispose); relative paths start at the config.
// A destination that cannot keep up (a FIFO nobody reads) or fails (EPIPE): records past
// maxBufferBytes are dropped and counted, the proxy keeps answering, and shutdown stays bounded.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { tap } from 'rxjs';
import { container } from 'tsyringe';
import { ProxyError } from '../../src/core/errors.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { createProxyFromConfig } from '../../src/proxy.js';
import { LineBuffer } from '../../src/plugins/access-log-lines.js';
import type { AccessRecord } from '../../src/plugins/access-log-record.js';
import { isoTime } from '../../src/plugins/access-log.plugin.js';
import { loggingChain, parseJsonLines, readAvailable, ROUTING, sendPaddedRequests, withFifoLog } from '../helpers/access-log.js';
import { exchange, get, ok, sleep, startKeepAliveOrigin, withClient } from '../helpers/keep-alive.js';
import { closedPort, rawExchange, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';
import { pollUntil } from '../helpers/wire.js';

/** The file's complete lines once it has `count` of them (bounded wait: a last async write may land just after dispose). */
async function lines(file: string, count: number): Promise<string[]> {
  const read = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  await pollUntil(() => read().length >= count, 80);
  return read();
}

const records = async (file: string, count: number) => (await lines(file, count)).map((line) => JSON.parse(line) as AccessRecord);

function assertDurations(t: import('ava').ExecutionContext, record: AccessRecord): void {
  for (const key of ['connectMs', 'firstByteMs', 'totalMs'] as const) {
    const value = record[key];
    t.is(typeof value, 'number', `${key} in ${JSON.stringify(record)}`);
    t.true(value! >= 0, `${key} in ${JSON.stringify(record)}`);
    t.is(Math.round(value! * 10) / 10, value!, `${key} has at most one decimal`);
  }
  t.true(record.firstByteMs! >= record.connectMs!, JSON.stringify(record));
  t.true(record.totalMs >= record.firstByteMs!, JSON.stringify(record));
}

for (const [where, chain] of [
  ['after byte-counter', [...ROUTING, 'upstream-dialer', 'byte-counter', 'access-log']],
  ['before byte-counter', [...ROUTING, 'access-log', 'upstream-dialer', 'byte-counter']],
] as const) {
  test(`two requests on one kept-alive connection: two JSON records with exact bytes (access-log ${where})`, async (t) => {
    await withTempDir('access-log-', async (dir) => {
      const file = path.join(dir, 'access.log');
      const replies: Record<string, string> = { '/one': ok('a'.repeat(3000)), '/two': ok('b'.repeat(7000)) };
      const origin = await startKeepAliveOrigin((request) => replies[request.target] ?? ok('?'));
      const proxy = startProxy({
        plugins: chain.map((name) => (name === 'access-log' ? { name, options: { path: file } } : name)),
      });
      const post = (target: string, size: number) =>
        `POST http://127.0.0.1:${origin.port}${target} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nContent-Length: ${size}\r\n\r\n${'q'.repeat(size)}`;
      await withClient(proxy, [origin], async (client) => {
        t.is((await exchange(client, post('/one', 1000))).body.length, 3000);
        t.is((await exchange(client, get(origin.port, '/two'))).body.length, 7000);
        client.socket.end();
        await client.reader.waitEnd();
      });
      const [one, two, ...rest] = await records(file, 2);
      t.is(rest.length, 0);
      t.like(one, { client: '127.0.0.1', user: null, method: 'POST', target: `http://127.0.0.1:${origin.port}/one`, status: 200, reused: false });
      t.like(two, { client: '127.0.0.1', user: null, method: 'GET', target: `http://127.0.0.1:${origin.port}/two`, status: 200, reused: true });
      // Counted after the routing plugins: exactly what the origin received and sent.
      t.is(one!.bytesIn + two!.bytesIn, origin.received[0]!.length);
      t.true(one!.bytesIn > 1000 && two!.bytesIn < 1000, JSON.stringify([one, two]));
      t.is(one!.bytesOut, replies['/one']!.length);
      t.is(two!.bytesOut, replies['/two']!.length);
      t.is(one!.answeredBy, undefined);
      t.is(one!.error, undefined);
      assertDurations(t, one!);
      assertDurations(t, two!);
      t.true(Math.abs(Date.parse(one!.time) - Date.now()) < 60_000, one!.time);
      t.true(Date.parse(one!.time) <= Date.parse(two!.time));
    });
  });
}

test('a CONNECT tunnel: one record when the connection closes, method CONNECT, status 200', async (t) => {
  await withTempDir('access-log-', async (dir) => {
    const file = path.join(dir, 'access.log');
    const origin = await startRawOrigin((socket) => socket.pipe(socket));
    const authority = `127.0.0.1:${origin.port}`;
    await withClient(startProxy({ plugins: loggingChain(file) }), [origin], async (client, proxy) => {
      client.socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      t.is((await client.reader.next({ method: 'HEAD' })).status, 200);
      client.socket.write('ping-through-tunnel');
      t.true(await pollUntil(() => client.reader.pending === 'ping-through-tunnel', 120), 'the tunnel echoes');
      t.is(await lines(file, 0).then((l) => l.length), 0, 'nothing logged while the tunnel is open');
      client.socket.end();
      t.true(await client.reader.waitEnd());
      t.true(await pollUntil(() => proxy.server.connections === 0, 120));
    });
    const all = await records(file, 1);
    t.is(all.length, 1, JSON.stringify(all));
    const [record] = all;
    t.like(record, { method: 'CONNECT', target: authority, status: 200, reused: false });
    t.true(record!.bytesIn >= 'ping-through-tunnel'.length, JSON.stringify(record));
    t.true(record!.bytesOut >= 'ping-through-tunnel'.length, JSON.stringify(record));
    t.is(record!.error, undefined);
    t.is(typeof record!.totalMs, 'number');
  });
});

test('an upgrade answered 101: one record at close, status 101, with the tunnel bytes', async (t) => {
  await withTempDir('access-log-', async (dir) => {
    const file = path.join(dir, 'access.log');
    // The origin answers 101 to the head, then echoes every byte.
    const origin = await startRawOrigin((socket) => {
      let buffer = '';
      const onData = (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        if (!buffer.includes('\r\n\r\n')) return;
        socket.off('data', onData);
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        socket.pipe(socket);
      };
      socket.on('data', onData);
    });
    const payload = 'x'.repeat(5000);
    await withClient(startProxy({ plugins: loggingChain(file) }), [origin], async (client, proxy) => {
      client.socket.write(get(origin.port, '/ws', 'Upgrade: websocket\r\nConnection: Upgrade\r\n'));
      t.is((await client.reader.next()).status, 101);
      client.socket.write(payload);
      t.true(await pollUntil(() => client.reader.pending.length >= payload.length, 120), 'the tunnel echoes');
      client.socket.end();
      t.true(await client.reader.waitEnd());
      t.true(await pollUntil(() => proxy.server.connections === 0, 120));
    });
    const all = await records(file, 1);
    t.is(all.length, 1, JSON.stringify(all));
    t.like(all[0], { method: 'GET', target: `http://127.0.0.1:${origin.port}/ws`, status: 101 });
    t.true(all[0]!.bytesIn >= payload.length && all[0]!.bytesOut >= payload.length, JSON.stringify(all[0]));
  });
});

test('a request refused by a policy plugin: status 403, answeredBy and the error code; no upstream contacted', async (t) => {
  await withTempDir('access-log-', async (dir) => {
    const file = path.join(dir, 'access.log');
    const origin = await startHttpOrigin((_request, response) => response.end('should not be reached'));
    const policy: ProxyPlugin = {
      name: 'test-policy',
      inbound: () =>
        tap((event) => {
          if (event.kind !== 'request-head') return;
          event.exchange.error = new ProxyError('ERR_PROXY_FORBIDDEN', 'not allowed');
          event.exchange.answeredBy = 'test-policy';
          event.exchange.user = 'alice';
        }),
    };
    const proxy = await startProxy({ plugins: [...ROUTING, policy, 'upstream-dialer', 'byte-counter', { name: 'access-log', options: { path: file } }] });
    try {
      const answer = await rawExchange(proxy.port, get(origin.port, '/secret'), { end: true });
      t.regex(answer, /^HTTP\/1\.1 403 /);
      t.is(origin.connections, 0);
    } finally {
      await proxy.close();
      await origin.close();
    }
    const [record, ...rest] = await records(file, 1);
    t.is(rest.length, 0);
    t.like(record, {
      method: 'GET',
      target: `http://127.0.0.1:${origin.port}/secret`,
      status: 403,
      user: 'alice',
      answeredBy: 'test-policy',
      error: 'ERR_PROXY_FORBIDDEN',
      connectMs: null,
      firstByteMs: null,
    });
    t.true(record!.bytesOut > 0, 'the error response was counted');
  });
});

test('a failed dial: status 502 and the error code', async (t) => {
  await withTempDir('access-log-', async (dir) => {
    const file = path.join(dir, 'access.log');
    const port = await closedPort();
    const proxy = await startProxy({ plugins: loggingChain(file) });
    try {
      t.regex(await rawExchange(proxy.port, get(port, '/'), { end: true }), /^HTTP\/1\.1 502 /);
    } finally {
      await proxy.close();
    }
    const [record] = await records(file, 1);
    t.like(record, { method: 'GET', target: `http://127.0.0.1:${port}/`, status: 502, error: 'ERR_PROXY_UPSTREAM_CONNECT', connectMs: null });
    t.is(record!.answeredBy, undefined);
  });
});

test('a malformed request: a record without method or target, status 400', async (t) => {
  await withTempDir('access-log-', async (dir) => {
    const file = path.join(dir, 'access.log');
    const proxy = await startProxy({ plugins: loggingChain(file) });
    try {
      t.regex(await rawExchange(proxy.port, 'GET\x01 / HTTP/1.1\r\n\r\n', { end: true }), /^HTTP\/1\.1 400 /);
    } finally {
      await proxy.close();
    }
    const [record, ...rest] = await records(file, 1);
    t.is(rest.length, 0);
    t.like(record, { method: null, target: null, status: 400, error: 'ERR_PROXY_BAD_REQUEST', user: null });
  });
});

test('common and combined formats: user -, time, quoted request line, status, bytes, referer and user-agent', async (t) => {
  await withTempDir('access-log-', async (dir) => {
    const common = path.join(dir, 'common.log');
    const combined = path.join(dir, 'combined.log');
    const origin = await startKeepAliveOrigin(() => ok('hello'));
    const proxy = startProxy({
      plugins: [
        ...ROUTING,
        'upstream-dialer',
        'byte-counter',
        { name: 'access-log', options: { format: 'common', path: common } },
        { name: 'access-log', options: { format: 'combined', path: combined } },
      ],
    });
    await withClient(proxy, [origin], async (client) => {
      t.is((await exchange(client, get(origin.port, '/a?b=1', 'Referer: http://ref.example/x\r\nUser-Agent: test "agent"/1.0\r\n'))).body, 'hello');
      t.is((await exchange(client, get(origin.port, '/plain'))).body, 'hello');
      client.socket.end();
      await client.reader.waitEnd();
    });
    const size = ok('hello').length;
    const target = `http://127.0.0.1:${origin.port}`;
    const time = String.raw`\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\]`;
    const [c1, c2] = await lines(common, 2);
    t.regex(c1!, new RegExp(String.raw`^127\.0\.0\.1 - - ${time} "GET ${target}/a\?b=1 HTTP/1\.1" 200 ${size}$`));
    t.regex(c2!, new RegExp(String.raw`^127\.0\.0\.1 - - ${time} "GET ${target}/plain HTTP/1\.1" 200 ${size}$`));
    const [m1, m2] = await lines(combined, 2);
    t.regex(
      m1!,
      new RegExp(String.raw`^127\.0\.0\.1 - - ${time} "GET ${target}/a\?b=1 HTTP/1\.1" 200 ${size} "http://ref\.example/x" "test \\"agent\\"/1\.0"$`),
    );
    t.regex(m2!, new RegExp(String.raw`^127\.0\.0\.1 - - ${time} "GET ${target}/plain HTTP/1\.1" 200 ${size} "-" "-"$`));
  });
});

test("a relative path starts at the config file's folder", async (t) => {
  await withTempDir('access-log-', async (dir) => {
    const origin = await startKeepAliveOrigin(() => ok('hi'));
    try {
      const config = path.join(dir, 'plugins.json');
      writeFileSync(
        config,
        JSON.stringify({
          plugins: [
            ...ROUTING.map((name) => ({ name })),
            { name: 'upstream-dialer' },
            { name: 'byte-counter' },
            { name: 'access-log', options: { path: 'logs.jsonl' } },
          ],
        }),
      );
      const services = container.createChildContainer();
      services.registerInstance(Logger, new SilentLogger());
      const server = await createProxyFromConfig(config, { container: services, host: '127.0.0.1', port: 0, gracePeriodMs: 0 });
      const { port } = await server.listen();
      try {
        t.regex(await rawExchange(port, get(origin.port, '/rel'), { end: true }), /^HTTP\/1\.1 200 /);
      } finally {
        await server.close(0);
      }
      t.false(existsSync(path.join(process.cwd(), 'logs.jsonl')), 'not relative to the working directory');
      const [record] = await records(path.join(dir, 'logs.jsonl'), 1);
      t.like(record, { method: 'GET', target: `http://127.0.0.1:${origin.port}/rel`, status: 200 });
    } finally {
      await origin.close();
    }
  });
});

test('a path that cannot be opened stops start-up with a configuration error', async (t) => {
  await withTempDir('access-log-', async (dir) => {
    const error = await t.throwsAsync(
      startProxy({ plugins: [...ROUTING, 'upstream-dialer', { name: 'access-log', options: { path: path.join(dir, 'missing', 'access.log') } }] }),
    );
    t.is((error as ProxyError).code, 'ERR_PROXY_CONFIG');
    t.regex(error.message, /access-log.*ENOENT/);
  });
});

test('LineBuffer writes JSON lines byte for byte as JSON.stringify would, escapes and odd numbers included', (t) => {
  const base: AccessRecord = {
    time: '2026-11-26T15:40:02.123Z',
    client: '::1',
    user: null,
    method: 'GET',
    target: 'http://a.example/x?q="1"\\',
    status: 200,
    bytesIn: 120,
    bytesOut: 1234,
    connectMs: 0.4,
    firstByteMs: null,
    totalMs: 12.5,
    reused: true,
  };
  const records: AccessRecord[] = [
    base,
    {
      ...base,
      user: 'ana "the" \u00e9\u2028\u{1f600}\x7f',
      method: null,
      target: null,
      status: null,
      connectMs: null,
      reused: false,
      error: 'ERR_PROXY_ABORTED',
    },
    { ...base, status: 407, answeredBy: 'proxy-auth', error: 'ERR_PROXY_AUTH_REQUIRED' },
    { ...base, user: 'lone \ud800 and \udfff, tab\t, nul\u0000', connectMs: 0, firstByteMs: -0, totalMs: 99_999_999_999_999.9 },
    { ...base, connectMs: 0.1 + 0.2, firstByteMs: -1.5, totalMs: 1e-7, bytesIn: 2 ** 53, bytesOut: 1e21 },
    { ...base, connectMs: 100.0, firstByteMs: 1234567.8, totalMs: 0.9, bytesIn: 0, bytesOut: 1_000_000_007 },
    { ...base, connectMs: 1e14, firstByteMs: 0.05, totalMs: 7.000000000000001 },
    { ...base, connectMs: Number.NaN, firstByteMs: -Infinity, totalMs: Infinity },
    { ...base, target: 'x'.repeat(70_000) + '\u0001'.repeat(10_000), answeredBy: 'a "plugin"' },
    { ...base, status: 503, answeredBy: 'faults', faults: ['flaky-api', 'slow-down'] },
    { ...base, error: 'ERR_PROXY_ABORTED', faults: ['a "quoted" \u00e9 name'] },
  ];
  const lines = new LineBuffer(1024); // smaller than the long record: it must grow
  const expected = records.map((record) => JSON.stringify(record) + '\n').join('');
  for (const record of records) lines.record(record);
  t.is(lines.size, Buffer.byteLength(expected));
  t.is(lines.take()!.toString('utf8'), expected);
  t.is(lines.take(), undefined, 'taking empties it');
  lines.text('after \u00e9\n');
  t.is(lines.take()!.toString('utf8'), 'after \u00e9\n');
});

test('isoTime formats like Date#toISOString, across second boundaries', (t) => {
  for (const ms of [0, 5, 999.9, 1000, 1764171602123.7, 1764171602999, 1764171603000, 1764171603042, 1764171602001]) {
    t.is(isoTime(ms), new Date(ms).toISOString(), String(ms));
  }
});

/** Records sent in the stall tests: about 300 KiB, several times the pipe plus the cap. */
const STALL_REQUESTS = 240;
const CAP = 64 * 1024;

test('a FIFO nobody reads: past maxBufferBytes records are dropped and counted, every request is answered, and close writes out the rest once the FIFO is read', async (t) => {
  await withFifoLog(CAP, async ({ proxy, stats, logger, origin, reader, capacity }) => {
    t.is(await sendPaddedRequests(proxy.port, origin.port, STALL_REQUESTS, 'stall'), STALL_REQUESTS, 'the proxy answered every request');
    t.true(stats.logDropped > 0, 'records were dropped');
    t.true(stats.logDropped < STALL_REQUESTS, `only those over the cap: ${stats.logDropped}`);
    t.is(logger.warnings.length, 1, 'one warning, however many drops');
    t.regex(logger.warnings[0]!, /^access-log: \d+ records dropped since the last warning \(the destination cannot keep up/);

    // Read the FIFO while the proxy closes: close() writes out what waited, then closes the FIFO (end of file here).
    const chunks: Buffer[] = [];
    const drained = pollUntil(() => readAvailable(reader, chunks), 800, 10);
    await proxy.close();
    t.true(await drained, 'the proxy closed its side of the FIFO');
    const written = parseJsonLines<AccessRecord>(chunks);
    t.is(written.length + stats.logDropped, STALL_REQUESTS, 'every record was written or counted as dropped');
    t.true(written.every((record) => record.status === 200 && record.target!.includes('/stall/')));
    // Nothing was read until close: all that was written sat in the pipe or under the cap.
    t.true(Buffer.concat(chunks).length <= capacity + CAP, `${Buffer.concat(chunks).length} bytes written, pipe ${capacity} + cap ${CAP}`);
  });
});

test('a FIFO never read: close() stops waiting after its timeout and counts what was not written', async (t) => {
  await withFifoLog(CAP, async ({ proxy, stats, logger, origin, reader, capacity }) => {
    t.is(await sendPaddedRequests(proxy.port, origin.port, STALL_REQUESTS, 'never'), STALL_REQUESTS);
    const closed = await Promise.race([proxy.close().then(() => true), sleep(20_000).then(() => false)]);
    t.true(closed, 'close() resolved although the FIFO was never read');
    t.regex(logger.warnings.at(-1)!, /records dropped since the last warning \(reported at shutdown\)/);
    // What is in the pipe is all that was written; the proxy closes its side (end of file here).
    const chunks: Buffer[] = [];
    t.true(await pollUntil(() => readAvailable(reader, chunks), 400, 10), 'the proxy closed its side of the FIFO');
    t.true(Buffer.concat(chunks).length <= capacity);
    t.is(parseJsonLines<AccessRecord>(chunks).length + stats.logDropped, STALL_REQUESTS, 'every record was written or counted as dropped');
  });
});

test("a write error (EPIPE: the FIFO's reader left) drops the records, counted and warned, and never crashes the proxy", async (t) => {
  await withFifoLog(CAP, async ({ proxy, stats, logger, origin, reader, closeReader }) => {
    t.is(await sendPaddedRequests(proxy.port, origin.port, 5, 'before'), 5);
    const chunks: Buffer[] = [];
    t.true(
      await pollUntil(() => (readAvailable(reader, chunks), parseJsonLines<AccessRecord>(chunks).length >= 5), 200, 25),
      'written within the flush second',
    );
    t.is(parseJsonLines<AccessRecord>(chunks).length, 5);
    closeReader();
    // About 25 KiB: one batch is written (and fails) at once, the rest when the proxy closes.
    t.is(await sendPaddedRequests(proxy.port, origin.port, 20, 'after'), 20, 'the proxy kept answering');
    await proxy.close();
    t.is(stats.logDropped, 20, 'every record after the reader left');
    t.true(
      logger.warnings.some((warning) => /write error EPIPE/.test(warning)),
      JSON.stringify(logger.warnings),
    );
  });
});

test('maxBufferBytes below its minimum stops start-up with a configuration error', async (t) => {
  const error = await t.throwsAsync(
    startProxy({ plugins: [...ROUTING, 'upstream-dialer', { name: 'access-log', options: { path: '/dev/null', maxBufferBytes: 1024 } }] }),
  );
  t.is((error as ProxyError).code, 'ERR_PROXY_CONFIG');
  t.regex(error.message, /maxBufferBytes/);
});
