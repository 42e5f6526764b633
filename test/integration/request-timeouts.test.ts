// head-parser's request-side timeouts on real loopback sockets: every request head is bounded
// (headersTimeoutMs), a body's gaps (bodyTimeoutMs) and its average rate (minBodyBytesPerSecond after
// bodyGracePeriodMs). Small option values; every wait waits for an event and is bounded.
import test, { type ExecutionContext } from 'ava';
import type net from 'node:net';
import { tap } from 'rxjs';
import type { ConnectionContext } from '../../src/core/context.js';
import type { ProxyError } from '../../src/core/errors.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { get, hasToken, ok, sleep, startKeepAliveOrigin, startNumberingOrigin, withClient, type ResponseReader } from '../helpers/keep-alive.js';
import { startProxy, startRawOrigin } from '../helpers/net.js';
import { pollUntil } from '../helpers/wire.js';

/**
 * A plugin instance, right after `head-parser`, that notes each connection's context, the error
 * the parser's stage failed with (what this plugin decides), the error codes the exchanges ended
 * with (an error answered in a request's place is on the exchange) and the closes.
 */
function recorder() {
  const contexts: ConnectionContext[] = [];
  const failures: string[] = [];
  const codes: string[] = [];
  const closes: (string | undefined)[] = [];
  const plugin: ProxyPlugin = {
    name: 'recorder',
    inbound: (ctx) => {
      contexts.push(ctx);
      return (source) => source.pipe(tap({ error: (error: ProxyError) => failures.push(error.code) }));
    },
    onExchangeEnd: (_ctx, exchange, error) => {
      const code = error?.code ?? exchange?.error?.code;
      if (code) codes.push(code);
    },
    onClose: (_ctx, error) => {
      if (error) codes.push(error.code);
      closes.push(error?.code);
    },
  };
  return { plugin, contexts, failures, codes, closes };
}

/** Starts a proxy with `head-parser` (with `options`) and the recorder after it. */
async function proxyWith(options: Record<string, number>) {
  const rec = recorder();
  const proxy = await startProxy({ plugins: [{ name: 'head-parser', options }, rec.plugin, 'connect-handler', 'http-forward', 'upstream-dialer'] });
  return { ...rec, proxy };
}

/** Waits (bounded) until the parser's stage failed; returns the codes it failed with. */
async function stageFailure(rec: { failures: string[] }): Promise<string[]> {
  await pollUntil(() => rec.failures.length > 0);
  return rec.failures;
}

/** Waits (bounded) until the proxy reported the connection's close; returns the error codes reported. */
async function codesAtClose(rec: { codes: string[]; closes: unknown[] }): Promise<string[]> {
  await pollUntil(() => rec.closes.length > 0);
  return rec.closes.length > 0 ? [...new Set(rec.codes)] : ['no close reported'];
}

/** Asserts that the next thing the client gets is a 408 with `Connection: close`, then the end. */
async function assert408(t: ExecutionContext, reader: ResponseReader): Promise<void> {
  const answer = await reader.next();
  t.is(answer.statusLine, 'HTTP/1.1 408 Request Timeout');
  t.true(hasToken(answer, 'connection', 'close'), 'Connection: close');
  t.true(await reader.waitEnd(), 'then the connection closes');
  t.is(reader.pending, '', 'nothing after it');
  reader.socket.end();
}

/** A POST head through the proxy to `port` with extra header lines. */
const post = (port: number, fields: string) => `POST http://127.0.0.1:${port}/up HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${fields}\r\n`;

test('a second request head that stalls halfway on a kept-alive connection is answered 408 (ERR_PROXY_HEADERS_TIMEOUT)', async (t) => {
  const origin = await startNumberingOrigin();
  const { proxy, ...rec } = await proxyWith({ headersTimeoutMs: 200 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(get(origin.port, '/one'));
    t.is((await client.reader.next()).body, 'o:1:/one');
    client.socket.write(`GET http://127.0.0.1:${origin.port}/two HTTP/1.1\r\nHo`);
    t.deepEqual(await stageFailure(rec), ['ERR_PROXY_HEADERS_TIMEOUT'], 'the parser fails with ERR_PROXY_HEADERS_TIMEOUT');
    await assert408(t, client.reader);
    t.deepEqual(await codesAtClose(rec), ['ERR_PROXY_HEADERS_TIMEOUT']);
  });
});

test('an idle kept-alive connection is governed by keepAliveTimeoutMs, not headersTimeoutMs: a late head is served, then a quiet close without 408', async (t) => {
  const origin = await startNumberingOrigin();
  // A wide gap between the two limits: a busy machine must not close the idle connection before
  // the late head arrives. The first head is timed from accept, so its limit leaves room for a
  // loaded machine (the whole suite at once) to get the first request read.
  const { proxy, ...rec } = await proxyWith({ headersTimeoutMs: 300, keepAliveTimeoutMs: 2500 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(get(origin.port, '/one'));
    t.is((await client.reader.next()).body, 'o:1:/one');
    await sleep(800); // idle past headersTimeoutMs: not a head in progress
    client.socket.write(get(origin.port, '/two'));
    t.is((await client.reader.next()).body, 'o:1:/two');
    t.true(await client.reader.waitEnd(6000), 'closed once idle for keepAliveTimeoutMs');
    t.is(client.reader.pending, '', 'no 408 or anything else');
    client.socket.end();
    t.deepEqual(await codesAtClose(rec), []);
    t.deepEqual(rec.failures, []);
  });
});

/** An origin that answers each complete request with the length of its body (never a stalled one). */
const bodyLengthOrigin = () => startKeepAliveOrigin((request) => ok(`got ${request.body.length}`));

test('a stalled Content-Length body is answered 408 (ERR_PROXY_BODY_TIMEOUT)', async (t) => {
  const origin = await bodyLengthOrigin();
  const { proxy, ...rec } = await proxyWith({ bodyTimeoutMs: 200 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(post(origin.port, 'Content-Length: 10\r\n') + 'abc');
    t.deepEqual(await stageFailure(rec), ['ERR_PROXY_BODY_TIMEOUT'], 'the parser fails with ERR_PROXY_BODY_TIMEOUT');
    await assert408(t, client.reader);
    t.deepEqual(await codesAtClose(rec), ['ERR_PROXY_BODY_TIMEOUT']);
    t.is(origin.requests.length, 0, 'the origin never got a whole request');
  });
});

test('a stalled chunked body is answered 408 (ERR_PROXY_BODY_TIMEOUT)', async (t) => {
  const origin = await bodyLengthOrigin();
  const { proxy, ...rec } = await proxyWith({ bodyTimeoutMs: 200 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(post(origin.port, 'Transfer-Encoding: chunked\r\n') + '5\r\nab');
    t.deepEqual(await stageFailure(rec), ['ERR_PROXY_BODY_TIMEOUT'], 'the parser fails with ERR_PROXY_BODY_TIMEOUT');
    await assert408(t, client.reader);
    t.deepEqual(await codesAtClose(rec), ['ERR_PROXY_BODY_TIMEOUT']);
  });
});

/** Writes `count` pieces of `piece` every `everyMs` while the socket is open. */
async function trickle(socket: net.Socket, piece: string, count: number, everyMs: number): Promise<void> {
  for (let i = 0; i < count && !socket.destroyed && !socket.readableEnded; i++) {
    socket.write(piece);
    await sleep(everyMs);
  }
}

test('a body trickled a byte at a time, never pausing for bodyTimeoutMs, is answered 408 (ERR_PROXY_BODY_TOO_SLOW)', async (t) => {
  const origin = await bodyLengthOrigin();
  const { proxy, ...rec } = await proxyWith({ bodyTimeoutMs: 500, minBodyBytesPerSecond: 100, bodyGracePeriodMs: 300 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(post(origin.port, 'Content-Length: 1000\r\n'));
    const sending = trickle(client.socket, 'x', 1000, 50); // about 20 bytes/s; stops when the proxy closes
    t.deepEqual(await stageFailure(rec), ['ERR_PROXY_BODY_TOO_SLOW'], 'the parser fails with ERR_PROXY_BODY_TOO_SLOW');
    await assert408(t, client.reader);
    await sending;
    t.deepEqual(await codesAtClose(rec), ['ERR_PROXY_BODY_TOO_SLOW']);
  });
});

test('a body sent at a fine pace, across many reads, is not cut', async (t) => {
  const origin = await bodyLengthOrigin();
  const { proxy, ...rec } = await proxyWith({ bodyTimeoutMs: 500, minBodyBytesPerSecond: 100, bodyGracePeriodMs: 300 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(post(origin.port, 'Content-Length: 600\r\n'));
    await trickle(client.socket, 'y'.repeat(50), 12, 50); // about 1000 bytes/s
    const response = await client.reader.next();
    t.is(response.status, 200);
    t.is(response.body, 'got 600');
    client.socket.end();
    t.true(await client.reader.waitEnd());
    t.deepEqual(await codesAtClose(rec), []);
    t.deepEqual(rec.failures, []);
  });
});

test('a body stalled after the origin already answered: the client has that answer, then the connection just closes', async (t) => {
  const origin = await startKeepAliveOrigin(() => '', { onHead: (_request, socket) => socket.write(ok('early')) });
  const { proxy, ...rec } = await proxyWith({ bodyTimeoutMs: 200 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(post(origin.port, 'Content-Length: 10\r\n') + 'abc');
    const response = await client.reader.next();
    t.is(response.status, 200);
    t.is(response.body, 'early');
    t.deepEqual(await stageFailure(rec), ['ERR_PROXY_BODY_TIMEOUT'], 'the parser fails with ERR_PROXY_BODY_TIMEOUT');
    t.true(await client.reader.waitEnd(), 'the proxy closes the connection');
    t.is(client.reader.pending, '', 'and sends nothing after the answer');
    t.deepEqual(await codesAtClose(rec), ['ERR_PROXY_BODY_TIMEOUT']);
  });
});

test('a client waiting for 100 Continue is not stalling: the body clock starts once the origin answers', async (t) => {
  const origin = await startKeepAliveOrigin((request) => ok(`got ${request.body}`), {
    onHead: (_request, socket) => void sleep(500).then(() => socket.write('HTTP/1.1 100 Continue\r\n\r\n')),
  });
  const { proxy, ...rec } = await proxyWith({ bodyTimeoutMs: 150, minBodyBytesPerSecond: 100, bodyGracePeriodMs: 100 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(post(origin.port, 'Content-Length: 5\r\nExpect: 100-continue\r\n'));
    const interim = await client.reader.next();
    t.is(interim.status, 100);
    client.socket.write('hello');
    const response = await client.reader.next();
    t.is(response.status, 200);
    t.is(response.body, 'got hello');
    t.deepEqual(rec.failures, []);
    t.is(rec.closes.length, 0, 'the connection is still open');
  });
});

test('a body held back by the proxy itself (the origin does not read) is not the client stalling', async (t) => {
  const size = 16 * 1024 * 1024;
  let resume: () => void = () => {};
  const origin = await startRawOrigin((socket) => {
    socket.pause();
    let received = 0;
    let headEnd = -1;
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (headEnd < 0) {
        head += chunk.toString('latin1', 0, Math.min(chunk.length, 4096));
        headEnd = head.indexOf('\r\n\r\n');
      }
      if (headEnd >= 0 && received >= headEnd + 4 + size) socket.write(ok(`got ${received - headEnd - 4}`));
    });
    resume = () => socket.resume();
  });
  const { proxy, ...rec } = await proxyWith({ bodyTimeoutMs: 150, minBodyBytesPerSecond: 1000, bodyGracePeriodMs: 100 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(post(origin.port, `Content-Length: ${size}\r\n`));
    client.socket.write(Buffer.alloc(size, 0x7a));
    t.true(await pollUntil(() => rec.contexts[0]?.inboundFlow.held().includes('sink') ?? false), 'the proxy holds the client for its upstream');
    await sleep(500); // far past bodyTimeoutMs, with no byte read from the client
    t.deepEqual(rec.failures, []);
    t.is(rec.closes.length, 0, 'not cut while held');
    resume();
    const response = await client.reader.next({ timeoutMs: 5000 });
    t.is(response.status, 200);
    t.is(response.body, `got ${size}`);
  });
});

test('with 0 the limits are off: a paused body and a paused later head are waited for', async (t) => {
  const origin = await bodyLengthOrigin();
  const { proxy, ...rec } = await proxyWith({ headersTimeoutMs: 0, bodyTimeoutMs: 0, minBodyBytesPerSecond: 0, bodyGracePeriodMs: 0 });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(post(origin.port, 'Content-Length: 6\r\n') + 'abc');
    await sleep(400);
    client.socket.write('def');
    t.is((await client.reader.next()).body, 'got 6');
    client.socket.write(`GET http://127.0.0.1:${origin.port}/two HTTP/1.1\r\nHo`);
    await sleep(300);
    client.socket.write(`st: 127.0.0.1:${origin.port}\r\n\r\n`);
    t.is((await client.reader.next()).body, 'got 0');
    t.deepEqual(rec.failures, []);
    t.is(rec.closes.length, 0, 'the connection is still open');
  });
});
