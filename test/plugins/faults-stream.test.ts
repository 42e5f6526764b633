// The byte-stream faults through the real `faults` plugin, on real loopback sockets: HTTP bodies
// and CONNECT tunnels, each direction. No wall time is asserted: bytes, order, counts, outcomes.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type net from 'node:net';
import test from 'ava';
import { identity, type MonoTypeOperatorFunction } from 'rxjs';
import type { ConnectionContext } from '../../src/core/context.js';
import type { ProxyEvent } from '../../src/core/events.js';
import type { FaultDecision } from '../../src/core/exchange.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import type { PluginSpec } from '../../src/core/registry.js';
import { exchange, get, openClient, startKeepAliveOrigin, sleep } from '../helpers/keep-alive.js';
import { connectTo, openTunnel, proxiedRequest, readAll, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { collect, pollUntil } from '../helpers/wire.js';

/** What the recorder keeps of each exchange as it ends. */
interface Recorded {
  method: string;
  error?: string;
  faults?: FaultDecision[];
}

/** A plugin keeping every connection's context and every exchange's faults and error as it ends. */
function recorder() {
  const contexts: ConnectionContext[] = [];
  const records: Recorded[] = [];
  const plugin: ProxyPlugin = {
    name: 'recorder',
    inbound(ctx): MonoTypeOperatorFunction<ProxyEvent> {
      contexts.push(ctx);
      return identity;
    },
    onExchangeEnd(_ctx, ended, error) {
      if (!ended || ended.id === 0) return;
      records.push({ method: ended.request.method, error: (ended.error ?? error)?.code, faults: ended.faults });
    },
  };
  return { plugin, contexts, records };
}

/** A proxy whose chain is routing, `faults` with `faults`, the dialer, then the recorder. */
function faultyProxy(faults: Record<string, unknown>[], record: ProxyPlugin) {
  const plugins: PluginSpec[] = ['head-parser', 'connect-handler', 'http-forward', { name: 'faults', options: { seed: 5, faults } }, 'upstream-dialer', record];
  return startProxy({ plugins });
}

/** The names and directions of the faults recorded on the exchanges, in order. */
const decisions = (records: Recorded[]) => records.map((record) => (record.faults ?? []).map((fault) => `${fault.name}:${fault.type}:${fault.direction}`));

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** An origin answering every request with its body (and the body's hash in a header). */
const echoHttpOrigin = () =>
  startHttpOrigin((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      response.writeHead(200, { 'content-length': body.length, 'x-sha': sha(body) });
      response.end(body);
    });
  });

/** An origin answering every request with `body`. */
const fixedOrigin = (body: Buffer) =>
  startHttpOrigin((request, response) => {
    request.resume();
    request.on('end', () => response.end(body));
  });

/** A raw echo origin: a tunnel's bytes come back, and its FIN. */
const echoOrigin = () => startRawOrigin((socket) => socket.pipe(socket));

/** The body of a raw response text (after the head). */
const bodyOf = (text: string) => text.slice(text.indexOf('\r\n\r\n') + 4);

test('latency both ways: a 64 KiB request body and its echo arrive intact and in order, and the kept-alive connection serves the next request', async (t) => {
  const origin = await echoHttpOrigin();
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'lag', type: 'latency', latencyMs: 20, jitterMs: 15, direction: 'both' }], record.plugin);
  try {
    const body = randomBytes(64 * 1024);
    const answer = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/echo`, { method: 'POST', body });
    t.is(answer.status, 200);
    t.is(answer.headers['x-sha'], sha(body), 'the origin got the request body intact');
    t.is(sha(answer.body), sha(body), 'the client got the response body intact');

    // Raw, kept alive: the message end of a delayed body does not overtake it, and the next request is served.
    const client = await openClient(proxy.port);
    try {
      const text = 'x'.repeat(5000);
      const post = `POST http://127.0.0.1:${origin.port}/a HTTP/1.1\r\nHost: x\r\nContent-Length: ${text.length}\r\n\r\n${text}`;
      const first = await exchange(client, post);
      t.is(first.body, text);
      const second = await exchange(client, get(origin.port, '/b'));
      t.is(second.status, 200);
      t.is(second.body, '', 'the GET after it is answered on the same connection');
    } finally {
      client.socket.destroy();
    }
    t.true(await pollUntil(() => record.records.length === 3));
    t.deepEqual(decisions(record.records), [['lag:latency:both'], ['lag:latency:both'], ['lag:latency:both']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('latency in a tunnel: bytes round-trip intact and in order both ways, then the FIN', async (t) => {
  const origin = await echoOrigin();
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'lag', type: 'latency', latencyMs: 10, jitterMs: 10, direction: 'both' }], record.plugin);
  try {
    const { socket, head } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    t.true(head.startsWith('HTTP/1.1 200'));
    const echoed = readAll(socket);
    const sent: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const piece = randomBytes(1000 + i);
      sent.push(piece);
      socket.write(piece);
    }
    socket.end();
    t.is(sha(await echoed), sha(Buffer.concat(sent)));
    t.true(await pollUntil(() => record.records.length === 1));
    t.deepEqual(decisions(record.records), [['lag:latency:both']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

/** Polls, while `work` runs, whether `flow` ever held the reason `fault`; returns both results. */
async function watchHeld<T>(held: () => string[] | undefined, work: Promise<T>): Promise<{ result: T; sawHeld: boolean }> {
  let sawHeld = false;
  let done = false;
  const watching = (async () => {
    // Bounded: the work itself has a bound; 400 × 10 ms is a safety limit.
    for (let i = 0; i < 400 && !done && !sawHeld; i++) {
      if (held()?.includes('fault')) sawHeld = true;
      await sleep(10);
    }
  })();
  try {
    return { result: await work, sawHeld };
  } finally {
    done = true;
    await watching;
  }
}

test('bandwidth downstream: a 64 KiB response at a small rate arrives intact, the origin side held paused (reason fault)', async (t) => {
  const body = randomBytes(64 * 1024);
  const origin = await fixedOrigin(body);
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'thin', type: 'bandwidth', bytesPerSecond: 128 * 1024 }], record.plugin);
  try {
    const { result, sawHeld } = await watchHeld(
      () => record.contexts[0]?.outboundFlow.held(),
      proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/big`),
    );
    t.is(sha(result.body), sha(body));
    t.true(sawHeld, 'the upstream was held paused by the fault');
    t.true(await pollUntil(() => record.records.length === 1));
    t.deepEqual(decisions(record.records), [['thin:bandwidth:downstream']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('bandwidth upstream: a 64 KiB request body at a small rate reaches the origin intact, the client held paused (reason fault)', async (t) => {
  const origin = await echoHttpOrigin();
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'thin', type: 'bandwidth', bytesPerSecond: 128 * 1024, direction: 'upstream' }], record.plugin);
  try {
    const body = randomBytes(64 * 1024);
    const { result, sawHeld } = await watchHeld(
      () => record.contexts[0]?.inboundFlow.held(),
      proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/up`, { method: 'POST', body }),
    );
    t.is(result.headers['x-sha'], sha(body));
    t.true(sawHeld, 'the client was held paused by the fault');
    t.true(await pollUntil(() => record.records.length === 1));
    t.deepEqual(decisions(record.records), [['thin:bandwidth:upstream']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('bandwidth in a tunnel, both ways: 64 KiB echoed intact, each side held paused', async (t) => {
  const origin = await echoOrigin();
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'thin', type: 'bandwidth', bytesPerSecond: 256 * 1024, direction: 'both' }], record.plugin);
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    const body = randomBytes(64 * 1024);
    const reasons = new Set<string>();
    const held = () => {
      const ctx = record.contexts[0];
      if (ctx?.inboundFlow.held().includes('fault')) reasons.add('inbound');
      if (ctx?.outboundFlow.held().includes('fault')) reasons.add('outbound');
      return reasons.size === 2 ? ['fault'] : [];
    };
    const echoed = readAll(socket);
    socket.end(body);
    const { result } = await watchHeld(held, echoed);
    t.is(sha(result), sha(body));
    t.deepEqual([...reasons].sort(), ['inbound', 'outbound']);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('slicer downstream: the client reads the body in many small pieces, intact', async (t) => {
  const body = randomBytes(3000);
  const origin = await fixedOrigin(body);
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'slices', type: 'slicer', averageSize: 100, sizeVariation: 20, delayMs: 5 }], record.plugin);
  try {
    const socket = await connectTo(proxy.port);
    socket.setNoDelay(true);
    let reads = 0;
    socket.on('data', () => reads++);
    const all = collect(socket);
    socket.write(get(origin.port, '/s', 'Connection: close\r\n'));
    const text = (await all).text;
    socket.destroy();
    t.is(sha(Buffer.from(bodyOf(text), 'latin1')), sha(body));
    // 3000 bytes in slices of 80–120 are 25 or more writes, 5 ms apart; reads may coalesce.
    t.true(reads >= 5, `reads: ${reads}`);
    t.true(await pollUntil(() => record.records.length === 1));
    t.deepEqual(decisions(record.records), [['slices:slicer:downstream']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('slicer upstream: the origin reads the request body in many small pieces, each no larger than a slice', async (t) => {
  const sizes: number[] = [];
  const chunks: Buffer[] = [];
  const origin = await startHttpOrigin((request, response) => {
    request.socket.setNoDelay(true);
    request.on('data', (chunk: Buffer) => {
      sizes.push(chunk.length);
      chunks.push(chunk);
    });
    request.on('end', () => response.end('ok'));
  });
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'slices', type: 'slicer', averageSize: 50, delayMs: 5, direction: 'upstream' }], record.plugin);
  try {
    const body = randomBytes(1500);
    const answer = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/s`, { method: 'POST', body });
    t.is(answer.status, 200);
    t.is(sha(Buffer.concat(chunks)), sha(body));
    t.true(sizes.length >= 5, `reads: ${sizes.join(',')}`);
    t.deepEqual(decisions(record.records), [['slices:slicer:upstream']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('slicer in a tunnel: the origin gets the client bytes in several reads, intact', async (t) => {
  const received: Buffer[] = [];
  const origin = await startRawOrigin((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('end', () => socket.end());
  });
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'slices', type: 'slicer', averageSize: 64, delayMs: 5, direction: 'upstream' }], record.plugin);
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    const body = randomBytes(1024);
    const closed = readAll(socket);
    socket.end(body);
    await closed;
    t.is(sha(Buffer.concat(received)), sha(body));
    t.true(received.length >= 4, `reads: ${received.length}`);
    t.true(received.every((chunk) => chunk.length <= 1024));
  } finally {
    await proxy.close();
    await origin.close();
  }
});
