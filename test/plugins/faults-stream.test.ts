// The byte-stream faults through the real `faults` plugin, on real loopback sockets: HTTP bodies
// and CONNECT tunnels, each direction. No wall time is asserted: bytes, order, counts, outcomes.
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import test from 'ava';
import { identity, type MonoTypeOperatorFunction } from 'rxjs';
import type { ConnectionContext } from '../../src/core/context.js';
import type { ProxyEvent } from '../../src/core/events.js';
import type { FaultDecision } from '../../src/core/exchange.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import type { PluginSpec } from '../../src/core/registry.js';
import { exchange, get, openClient, sleep } from '../helpers/keep-alive.js';
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

/** A raw origin keeping, per connection, the bytes it got and whether it saw the FIN or the close. */
function watchingOrigin(onSocket: (socket: net.Socket) => void = () => {}) {
  const seen: { bytes: Buffer; ended: boolean; closed: boolean }[] = [];
  const started = startRawOrigin((socket) => {
    const entry = { bytes: Buffer.alloc(0), ended: false, closed: false };
    seen.push(entry);
    socket.on('data', (chunk: Buffer) => (entry.bytes = Buffer.concat([entry.bytes, chunk])));
    socket.on('end', () => {
      entry.ended = true;
      // allowHalfOpen: close our side too, so 'close' tells that the proxy let go of the connection.
      if (!socket.writableEnded) socket.end();
    });
    socket.on('close', () => (entry.closed = true));
    onSocket(socket);
  });
  return { seen, started };
}

test('limit-data downstream: the client gets the head and exactly `bytes` of the body, then the connection closes', async (t) => {
  const origin = await fixedOrigin(Buffer.alloc(1000, 'z'));
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'cap', type: 'limit-data', bytes: 100 }], record.plugin);
  try {
    const socket = await connectTo(proxy.port);
    const done = collect(socket);
    socket.write(get(origin.port, '/big'));
    const { text } = await done;
    socket.destroy();
    t.true(text.startsWith('HTTP/1.1 200'));
    t.is(bodyOf(text), 'z'.repeat(100));
    t.true(await pollUntil(() => record.records.length === 1));
    t.is(record.records[0]!.error, 'ERR_PROXY_ABORTED');
    t.deepEqual(decisions(record.records), [['cap:limit-data:downstream']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

/** A POST of a 1000-byte body through the proxy; the body written with the head, or once the origin has the head. */
async function postThrough(proxyPort: number, originPort: number, head: () => boolean, together: boolean) {
  const socket = await connectTo(proxyPort);
  const done = collect(socket);
  const request = `POST http://127.0.0.1:${originPort}/up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`;
  if (together) socket.write(request + 'y'.repeat(1000));
  else {
    socket.write(request);
    if (await pollUntil(head)) socket.write('y'.repeat(1000));
  }
  try {
    return (await done).text;
  } finally {
    socket.destroy();
  }
}

test('limit-data upstream: the origin gets the head and exactly `bytes` of the request body, then both connections close', async (t) => {
  const watched = watchingOrigin();
  const origin = await watched.started;
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'cap', type: 'limit-data', bytes: 100, direction: 'upstream' }], record.plugin);
  try {
    const hasHead = () => watched.seen[0]?.bytes.includes('\r\n\r\n') ?? false;
    t.is(await postThrough(proxy.port, origin.port, hasHead, false), '', 'no answer: the connection closed');
    t.true(await pollUntil(() => watched.seen[0]?.closed ?? false), 'the origin connection closed');
    t.is(bodyOf(watched.seen[0]!.bytes.toString('latin1')), 'y'.repeat(100));
    // Not asserted here: the exchange is not reported to onExchangeEnd (the known bug below).
  } finally {
    await proxy.close();
    await origin.close();
  }
});

// The body's first bytes come while the dial is still under way: the close waits until the request
// has its upstream, so the bytes limit-data let through reach the origin.
test('limit-data upstream, the body sent with the head: the origin still gets the head and `bytes` of the body', async (t) => {
  const watched = watchingOrigin();
  const origin = await watched.started;
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'cap', type: 'limit-data', bytes: 100, direction: 'upstream' }], record.plugin);
  try {
    t.is(await postThrough(proxy.port, origin.port, () => true, true), '');
    t.true(await pollUntil(() => watched.seen[0]?.closed ?? false, 40), 'the origin was dialled and closed');
    t.is(bodyOf(watched.seen[0]?.bytes.toString('latin1') ?? ''), 'y'.repeat(100));
    t.true(await pollUntil(() => record.records.length === 1, 40));
    t.deepEqual(decisions(record.records), [['cap:limit-data:upstream']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('limit-data in a tunnel: exactly `bytes` reach the other side each way, then the tunnel closes', async (t) => {
  // Upstream: the client sends 200 bytes, the origin gets 50.
  const up = watchingOrigin();
  const upOrigin = await up.started;
  // Downstream: the origin sends 200 bytes at once, the client gets 50.
  const downOrigin = await startRawOrigin((socket) => socket.write(Buffer.alloc(200, 'd')));
  const record = recorder();
  const proxy = await faultyProxy(
    [
      { name: 'cap-up', type: 'limit-data', bytes: 50, direction: 'upstream', match: { ports: [upOrigin.port] } },
      { name: 'cap-down', type: 'limit-data', bytes: 50, match: { ports: [downOrigin.port] } },
    ],
    record.plugin,
  );
  try {
    const first = await openTunnel(proxy.port, `127.0.0.1:${upOrigin.port}`);
    const firstDone = collect(first.socket);
    first.socket.write(Buffer.alloc(200, 'u'));
    t.is((await firstDone).text, '');
    first.socket.destroy();
    t.true(await pollUntil(() => up.seen[0]?.closed ?? false));
    t.is(up.seen[0]!.bytes.toString('latin1'), 'u'.repeat(50));

    const second = await openTunnel(proxy.port, `127.0.0.1:${downOrigin.port}`);
    // The origin's bytes may come with the 200's head or after it.
    const rest = bodyOf(second.head) + (await collect(second.socket)).text;
    second.socket.destroy();
    t.is(rest, 'd'.repeat(50));
    t.true(await pollUntil(() => record.records.length === 2));
    t.deepEqual(decisions(record.records), [['cap-up:limit-data:upstream'], ['cap-down:limit-data:downstream']]);
    t.deepEqual(
      record.records.map((r) => r.error),
      ['ERR_PROXY_ABORTED', 'ERR_PROXY_ABORTED'],
    );
  } finally {
    await proxy.close();
    await upOrigin.close();
    await downOrigin.close();
  }
});

test('timeout downstream: the head goes, no body byte is relayed, then the connection closes after afterMs', async (t) => {
  const origin = await fixedOrigin(Buffer.alloc(500, 'z'));
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'stall', type: 'timeout', afterMs: 150 }], record.plugin);
  try {
    const socket = await connectTo(proxy.port);
    const done = collect(socket);
    socket.write(get(origin.port, '/t'));
    const { text } = await done;
    socket.destroy();
    t.true(text.startsWith('HTTP/1.1 200'), text);
    t.is(bodyOf(text), '', 'no body byte');
    t.true(await pollUntil(() => record.records.length === 1));
    t.is(record.records[0]!.error, 'ERR_PROXY_ABORTED');
    t.deepEqual(decisions(record.records), [['stall:timeout:downstream']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('timeout upstream in a tunnel: the origin gets nothing, then both sides close after afterMs', async (t) => {
  const watched = watchingOrigin();
  const origin = await watched.started;
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'stall', type: 'timeout', afterMs: 150, direction: 'upstream' }], record.plugin);
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    const done = collect(socket);
    socket.write('never relayed');
    t.is((await done).text, '');
    socket.destroy();
    t.true(await pollUntil(() => watched.seen[0]?.closed ?? false));
    t.is(watched.seen[0]!.bytes.length, 0);
    t.deepEqual(decisions(record.records), [['stall:timeout:upstream']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('timeout 0 in a tunnel: nothing comes back and the connection stays open until the client closes it', async (t) => {
  const watched = watchingOrigin((socket) => socket.pipe(socket));
  const origin = await watched.started;
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'stall', type: 'timeout', afterMs: 0 }], record.plugin);
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.write('ping');
    t.true(await pollUntil(() => watched.seen[0]?.bytes.toString() === 'ping'), 'the origin got it and echoed it');
    await sleep(300);
    t.is(received, 0, 'the echo was not relayed');
    t.false(socket.closed || socket.readableEnded, 'still open');
    t.false(watched.seen[0]!.closed);
    t.is(record.records.length, 0, 'the tunnel has not ended');
    // A reset, not a FIN: a FIN is a half-close, passed on, and the stall swallows the origin's (see the report).
    socket.resetAndDestroy();
    t.true(await pollUntil(() => record.records.length === 1), 'the client closing ends it');
    t.true(await pollUntil(() => watched.seen[0]!.closed));
    t.deepEqual(decisions(record.records), [['stall:timeout:downstream']]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

/** Resolves the code of the socket's error, or 'closed' if it closed without one. */
const outcome = (socket: net.Socket) =>
  new Promise<string>((resolve) => {
    let code = 'closed';
    socket.on('error', (error: NodeJS.ErrnoException) => (code = error.code ?? 'error'));
    socket.once('close', () => resolve(code));
  });

test('reset: the client gets an RST after afterMs, in a tunnel (downstream) and during a request body (upstream)', async (t) => {
  const echo = await echoOrigin();
  const http = await startHttpOrigin((request, response) => {
    request.resume();
    request.on('end', () => response.end('ok'));
  });
  const record = recorder();
  const proxy = await faultyProxy(
    [
      { name: 'rst-down', type: 'reset', afterMs: 100, match: { methods: ['CONNECT'] } },
      { name: 'rst-up', type: 'reset', afterMs: 100, direction: 'upstream', match: { methods: ['POST'] } },
    ],
    record.plugin,
  );
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`);
    const tunnelOutcome = outcome(socket);
    socket.write('echo me');
    t.is(await tunnelOutcome, 'ECONNRESET');

    // The body is never finished: the reset comes while the request is still going up.
    const posting = await connectTo(proxy.port);
    const postOutcome = outcome(posting);
    posting.write(`POST http://127.0.0.1:${http.port}/p HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nten bytes.`);
    t.is(await postOutcome, 'ECONNRESET');
    t.true(await pollUntil(() => record.records.length >= 1));
    t.deepEqual(decisions(record.records).slice(0, 1), [['rst-down:reset:downstream']]);
  } finally {
    await proxy.close();
    await echo.close();
    await http.close();
  }
});

test('reset upstream during a request body: the exchange is reported with its fault', async (t) => {
  const http = await startHttpOrigin((request, response) => {
    request.resume();
    request.on('end', () => response.end('ok'));
  });
  const record = recorder();
  const proxy = await faultyProxy([{ name: 'rst-up', type: 'reset', afterMs: 50, direction: 'upstream' }], record.plugin);
  try {
    const posting = await connectTo(proxy.port);
    const postOutcome = outcome(posting);
    posting.write(`POST http://127.0.0.1:${http.port}/p HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nten bytes.`);
    t.is(await postOutcome, 'ECONNRESET');
    t.true(await pollUntil(() => record.records.length === 1, 40));
    t.deepEqual(decisions(record.records), [['rst-up:reset:upstream']]);
  } finally {
    await proxy.close();
    await http.close();
  }
});

/** Pushes 'data', 'marker' and 'end' into `log` as `socket` gets data and its FIN; the marker 30 ms after the first data. */
function orderLog(socket: EventEmitter, log: string[]): void {
  socket.on('data', () => {
    if (log.includes('data')) return;
    log.push('data');
    setTimeout(() => log.push('marker'), 30);
  });
  socket.on('end', () => log.push('end'));
}

test('slow-close in a tunnel: the FIN reaches the other side after the data, and after a marker set once the data arrived, each way', async (t) => {
  const upLog: string[] = [];
  const upOrigin = await startRawOrigin((socket) => {
    orderLog(socket, upLog);
    socket.on('end', () => socket.end());
  });
  const downOrigin = await startRawOrigin((socket) => socket.end('from the origin'));
  const record = recorder();
  const proxy = await faultyProxy(
    [
      { name: 'late-up', type: 'slow-close', delayMs: 400, direction: 'upstream', match: { ports: [upOrigin.port] } },
      { name: 'late-down', type: 'slow-close', delayMs: 400, match: { ports: [downOrigin.port] } },
    ],
    record.plugin,
  );
  try {
    const first = await openTunnel(proxy.port, `127.0.0.1:${upOrigin.port}`);
    const firstClosed = readAll(first.socket);
    first.socket.end('to the origin');
    t.true(await pollUntil(() => upLog.includes('end')));
    t.deepEqual(upLog, ['data', 'marker', 'end']);
    await firstClosed;

    const second = await connectTo(proxy.port);
    const downLog: string[] = [];
    let text = '';
    second.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    // The head and the origin's bytes may come in one read: the log starts at the first byte after the head.
    const bodyLog = new EventEmitter();
    second.on('data', () => {
      if (text.includes('\r\n\r\n') && bodyOf(text).length > 0 && !downLog.includes('data')) bodyLog.emit('data', Buffer.alloc(0));
    });
    second.on('end', () => bodyLog.emit('end'));
    orderLog(bodyLog, downLog);
    second.write(`CONNECT 127.0.0.1:${downOrigin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    second.end();
    t.true(await pollUntil(() => downLog.includes('end')));
    second.destroy();
    t.is(bodyOf(text), 'from the origin');
    t.deepEqual(downLog, ['data', 'marker', 'end']);
    t.true(await pollUntil(() => record.records.length === 2));
    t.deepEqual(decisions(record.records), [['late-up:slow-close:upstream'], ['late-down:slow-close:downstream']]);
  } finally {
    await proxy.close();
    await upOrigin.close();
    await downOrigin.close();
  }
});

test.serial('a client gone in the middle of stream faults: the proxy closes promptly and leaves no timer or handle behind', async (t) => {
  const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
  const resources = () => process.getActiveResourcesInfo().length;
  const beforeTimers = timers();
  const beforeResources = resources();
  const origin = await echoOrigin();
  const body = await fixedOrigin(Buffer.alloc(64 * 1024, 'b'));
  const record = recorder();
  const long = 600_000;
  const proxy = await faultyProxy(
    [
      { name: 'lag', type: 'latency', latencyMs: long, direction: 'both', match: { methods: ['CONNECT'] } },
      { name: 'stall', type: 'timeout', afterMs: long, direction: 'upstream', match: { methods: ['CONNECT'] } },
      { name: 'rst', type: 'reset', afterMs: long, match: { methods: ['CONNECT'] } },
      { name: 'late', type: 'slow-close', delayMs: long, match: { methods: ['CONNECT'] } },
      { name: 'thin', type: 'bandwidth', bytesPerSecond: 1000, match: { methods: ['GET'] } },
      { name: 'slices', type: 'slicer', averageSize: 10, delayMs: long, match: { methods: ['GET'] } },
    ],
    record.plugin,
  );
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    socket.write('held by the latency');
    t.true(await pollUntil(() => record.contexts[0]?.inboundFlow.held().includes('fault') ?? false), 'the tunnel is held by a fault');
    socket.destroy();

    const getting = await connectTo(proxy.port, get(body.port, '/big'));
    t.true(await pollUntil(() => record.contexts[1]?.outboundFlow.held().includes('fault') ?? false), 'the body is held by a fault');
    getting.destroy();
  } finally {
    // Held paused, the proxy reads nothing from the sockets: it learns of their close as it closes.
    await proxy.close();
    await origin.close();
    await body.close();
  }
  t.is(record.records.length, 2, 'both exchanges ended');
  t.true(await pollUntil(() => timers() <= beforeTimers), `timers: ${timers()} now, ${beforeTimers} before`);
  t.true(await pollUntil(() => resources() <= beforeResources), `resources: ${process.getActiveResourcesInfo().join(',')}, ${beforeResources} before`);
});
