// Graceful drain (ProxyServer.close(), SIGTERM in the CLI): nothing in flight is lost while the
// grace period lasts. Idle kept-alive connections close at once; a busy one closes after the last
// response due, which says `Connection: close`; requests still arriving or held in the chain are
// served too; tunnels run until the grace period ends. Every wait waits for an event and is
// bounded; origins answer when the test opens their gate, never on a timer the test relies on.
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { tap } from 'rxjs';
import { container } from 'tsyringe';
import type { ConnectionContext, Target } from '../../src/core/context.js';
import { ProxyError } from '../../src/core/errors.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { GateStage, stage } from '../../src/core/stage.js';
import { Dialer } from '../../src/core/transport.js';
import { exchange, get, hasToken, ok, openClient, sleep, startKeepAliveOrigin, withClient, type ResponseReader } from '../helpers/keep-alive.js';
import { openTunnel, orClose, readUntil, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { startProxyProcess } from '../helpers/proxy-process.js';
import { collect, pollUntil } from '../helpers/wire.js';

/** The chain of the CLI test: what forwarding and tunnelling need, no logger. */
const CHAIN = [{ name: 'head-parser' }, { name: 'connect-handler' }, { name: 'http-forward' }, { name: 'upstream-dialer' }];
/** Grace period of the in-process tests: far longer than any of them needs, so it never decides. */
const GRACE_MS = 10_000;

/** A gate the test opens: origins and dialers wait on it instead of on a timer. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** The body of the slow origin's answer to `path`: large enough to span many reads, and unique. */
const slowBody = (path: string) => `${path}:`.padEnd(64 * 1024, path.slice(-1));

/** Asserts that a new connection to `port` is refused (the listener is closed). */
async function assertRefused(t: ExecutionContext, port: number): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  try {
    const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    t.is(error.code, 'ECONNREFUSED', 'a new connection is refused');
  } finally {
    socket.destroy();
  }
}

/** Tracks whether the proxy sent FIN on `socket` (an orderly close, not a reset). */
function watchEnd(socket: net.Socket): { readonly ended: boolean } {
  const state = { ended: false };
  socket.once('end', () => (state.ended = true));
  return state;
}

test('SIGTERM: in-flight requests finish with Connection: close, idle connections close at once, new ones are refused, a tunnel runs until the grace period ends, exit 0', async (t) => {
  const IN_FLIGHT = 10;
  const release = gate();
  let arrived = 0;
  const origin = await startHttpOrigin((request, response) => {
    request.resume();
    const path = request.url ?? '';
    if (!path.startsWith('/slow/')) return void response.end('quick');
    arrived++;
    // A slow origin (~300 ms), which never answers before the test opened its gate.
    void Promise.all([release.opened, sleep(300)]).then(() => response.end(slowBody(path)));
  });
  const echo = await startRawOrigin((socket) => socket.pipe(socket));
  const proxy = await orClose(startProxyProcess(CHAIN, { args: ['--grace-period', '1500'] }), origin, echo);
  const sockets: net.Socket[] = [];
  try {
    const idle: { client: { socket: net.Socket; reader: ResponseReader }; end: { readonly ended: boolean } }[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await openClient(proxy.port);
      sockets.push(client.socket);
      const answer = await exchange(client, get(origin.port, `/quick/${i}`));
      t.is(answer.body, 'quick');
      t.false(hasToken(answer, 'connection', 'close'), 'kept alive before the drain');
      idle.push({ client, end: watchEnd(client.socket) });
    }
    const tunnel = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`);
    sockets.push(tunnel.socket);
    t.regex(tunnel.head, /^HTTP\/1\.1 200 /);

    const busy: { socket: net.Socket; reader: ResponseReader; path: string; end: { readonly ended: boolean } }[] = [];
    let busyBytes = 0;
    for (let i = 0; i < IN_FLIGHT; i++) {
      const client = await openClient(proxy.port);
      sockets.push(client.socket);
      const path = `/slow/${i}`;
      client.socket.on('data', (chunk: Buffer) => (busyBytes += chunk.length));
      client.socket.write(get(origin.port, path));
      busy.push({ ...client, path, end: watchEnd(client.socket) });
    }
    t.true(await pollUntil(() => arrived === IN_FLIGHT), `every in-flight request reached the origin (${arrived})`);

    const exited = once(proxy.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    proxy.child.kill('SIGTERM');

    // The idle connections end, with no byte, while the in-flight answers are still held back.
    for (const { client, end } of idle) {
      t.true(await client.reader.waitEnd(10_000), 'an idle connection closes once the drain begins');
      t.true(end.ended, 'with a FIN');
      t.is(client.reader.pending, '', 'and no response');
      client.socket.end();
    }
    t.is(busyBytes, 0, 'no in-flight client got a byte before the origin answered');
    await assertRefused(t, proxy.port);
    tunnel.socket.write('after SIGTERM');
    t.is(await readUntil(tunnel.socket, (text) => text === 'after SIGTERM'), 'after SIGTERM', 'the tunnel still carries bytes');

    release.open();
    for (const client of busy) {
      const answer = await client.reader.next({ timeoutMs: 10_000 });
      t.is(answer.status, 200, client.path);
      t.is(answer.body, slowBody(client.path), `${client.path}: the whole body`);
      t.true(hasToken(answer, 'connection', 'close'), `${client.path}: Connection: close`);
      t.true(await client.reader.waitEnd(), `${client.path}: then the connection closes`);
      t.true(client.end.ended, `${client.path}: with a FIN`);
      t.is(client.reader.pending, '', `${client.path}: nothing after the response`);
      client.socket.end();
    }

    // Every response is out; the tunnel still runs, until the grace period ends.
    tunnel.socket.write('still open');
    t.is(await readUntil(tunnel.socket, (text) => text === 'still open'), 'still open', 'the tunnel outlives the in-flight requests');
    await collect(tunnel.socket, 15_000); // the proxy closes it (throws if it does not)
    const [code, signal] = await Promise.race([exited, sleep(15_000).then(() => [null, 'timeout'] as const)]);
    t.is(signal, null, proxy.stderr());
    t.is(code, 0, proxy.stderr());
  } finally {
    for (const socket of sockets) socket.destroy();
    await proxy.close();
    await origin.close();
    await echo.close();
  }
});

/**
 * A plugin instance, after `head-parser`: keeps each connection's context (to see `receiving`)
 * and answers `/local` itself, as a plugin answering in the upstream's place does.
 */
function observer() {
  const contexts: ConnectionContext[] = [];
  const plugin: ProxyPlugin = {
    name: 'observer',
    inbound: (ctx) => {
      contexts.push(ctx);
      return tap((event) => {
        if (event.kind !== 'request-head' || !event.head.target.endsWith('/local')) return;
        const body = Buffer.from('local');
        event.exchange.reply = { head: { version: '1.1', status: 200, reason: 'OK', headers: [['Content-Length', String(body.length)]] }, body };
      });
    },
  };
  return { plugin, contexts };
}

/**
 * A proxy with the observer after `head-parser` (and `gate` after it, when given); `dialer`
 * replaces the TCP dialer when given.
 */
async function proxyWith(options: { dialer?: Dialer; dialerOptions?: Record<string, number>; gate?: ProxyPlugin } = {}) {
  const seen = observer();
  const services = container.createChildContainer();
  services.registerInstance(Logger, new SilentLogger());
  if (options.dialer) services.registerInstance(Dialer, options.dialer);
  const proxy = await startProxy({
    container: services,
    plugins: [
      'head-parser',
      seen.plugin,
      ...(options.gate ? [options.gate] : []),
      'connect-handler',
      'http-forward',
      { name: 'upstream-dialer', options: options.dialerOptions ?? {} },
    ],
  });
  return { proxy, contexts: seen.contexts };
}

/**
 * A Dialer that connects only once the test opens its gate ('connect'), or never, until its
 * attempt is aborted ('hang'). Counts the dials begun.
 */
function gatedDialer(mode: 'connect' | 'hang') {
  const release = gate();
  let dials = 0;
  const dialer: Dialer = {
    dial(target: Target, signal: AbortSignal): Promise<Duplex> {
      dials++;
      return new Promise<Duplex>((resolve, reject) => {
        signal.addEventListener(
          'abort',
          () => reject(signal.reason instanceof ProxyError ? signal.reason : new ProxyError('ERR_PROXY_ABORTED', 'dial aborted')),
          { once: true },
        );
        if (mode === 'hang') return;
        void release.opened.then(() => {
          if (signal.aborted) return;
          const socket = net.connect(target.port, target.host);
          socket.once('connect', () => resolve(socket));
          socket.once('error', reject);
        });
      });
    },
  };
  return {
    dialer,
    open: release.open,
    get dials() {
      return dials;
    },
  };
}

/** A plugin whose check waits for the test's gate, then refuses (as a slow credentials check may). */
function refusingGate() {
  const release = gate();
  let checks = 0;
  class Refuse extends GateStage {
    protected check(): Promise<void> {
      checks++;
      return release.opened.then(() => {
        throw new ProxyError('ERR_PROXY_FORBIDDEN', 'refused after a wait');
      });
    }
  }
  const plugin: ProxyPlugin = { name: 'refusing-gate', inbound: (ctx) => stage((downstream) => new Refuse(downstream, ctx)) };
  return {
    plugin,
    open: release.open,
    get checks() {
      return checks;
    },
  };
}

/** A keep-alive origin that answers `<path>` once the test opens its gate. */
async function gatedOrigin() {
  const release = gate();
  const origin = await startKeepAliveOrigin(async (request) => {
    await release.opened;
    return ok(request.target.slice(request.target.lastIndexOf('/')));
  });
  return Object.assign(origin, { open: release.open });
}

test('close(): a pipelined pair in flight is answered, the second response with Connection: close', async (t) => {
  const origin = await gatedOrigin();
  const { proxy } = await proxyWith();
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(get(origin.port, '/a') + get(origin.port, '/b'));
    t.true(await pollUntil(() => origin.requests.length === 2), 'both requests reached the origin');
    const closing = proxy.server.close(GRACE_MS);
    await assertRefused(t, proxy.port); // also: the drain has begun (it runs before any I/O event)
    origin.open();
    const first = await client.reader.next();
    t.is(first.body, '/a');
    t.false(hasToken(first, 'connection', 'close'), 'not the last response due: no Connection: close');
    const second = await client.reader.next();
    t.is(second.body, '/b');
    t.true(hasToken(second, 'connection', 'close'), 'the last response due says Connection: close');
    t.true(await client.reader.waitEnd(), 'then the connection closes');
    t.is(client.reader.pending, '');
    client.socket.end();
    await closing;
    t.is(proxy.server.connections, 0);
    t.deepEqual(origin.lines, [`GET /a HTTP/1.1`, `GET /b HTTP/1.1`]);
  });
});

test('close(): a request whose head is half-sent is completed after close() and still served, with Connection: close', async (t) => {
  const origin = await gatedOrigin();
  const { proxy, contexts } = await proxyWith();
  await withClient(proxy, [origin], async (client) => {
    const request = get(origin.port, '/half');
    const cut = request.indexOf('Host:');
    client.socket.write(request.slice(0, cut));
    t.true(await pollUntil(() => contexts[0]?.receiving === true), 'the proxy read the first half of the head');
    const closing = proxy.server.close(GRACE_MS);
    await assertRefused(t, proxy.port);
    client.socket.write(request.slice(cut));
    t.true(await pollUntil(() => origin.requests.length === 1), 'the request reached the origin');
    origin.open();
    const answer = await client.reader.next();
    t.is(answer.status, 200);
    t.is(answer.body, '/half');
    t.true(hasToken(answer, 'connection', 'close'), 'Connection: close');
    t.true(await client.reader.waitEnd(), 'then the connection closes');
    client.socket.end();
    await closing;
    t.is(proxy.server.connections, 0);
  });
});

test('close(): a half-sent request answered by a plugin in place is still served, with Connection: close, and the connection closes', async (t) => {
  const { proxy, contexts } = await proxyWith();
  await withClient(proxy, [], async (client) => {
    const request = get(1, '/local');
    const cut = request.indexOf('Host:');
    client.socket.write(request.slice(0, cut));
    t.true(await pollUntil(() => contexts[0]?.receiving === true), 'the proxy read the first half of the head');
    const closing = proxy.server.close(GRACE_MS);
    await assertRefused(t, proxy.port);
    client.socket.write(request.slice(cut));
    const answer = await client.reader.next();
    t.is(answer.status, 200);
    t.is(answer.body, 'local');
    t.true(hasToken(answer, 'connection', 'close'), 'Connection: close');
    t.true(await client.reader.waitEnd(), 'then the connection closes (not at the end of the grace period)');
    client.socket.end();
    await closing;
  });
});

test('close(): a request held by a slow dial is not closed before its answer, which says Connection: close', async (t) => {
  const origin = await gatedOrigin();
  origin.open();
  const dialer = gatedDialer('connect');
  const { proxy } = await proxyWith({ dialer: dialer.dialer });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(get(origin.port, '/dialled'));
    t.true(await pollUntil(() => dialer.dials === 1), 'the dial began');
    const closing = proxy.server.close(GRACE_MS);
    await assertRefused(t, proxy.port);
    t.false(client.reader.isEnded, 'still open while the dial is in progress');
    dialer.open();
    const answer = await client.reader.next();
    t.is(answer.status, 200);
    t.is(answer.body, '/dialled');
    t.true(hasToken(answer, 'connection', 'close'), 'Connection: close');
    t.true(await client.reader.waitEnd(), 'then the connection closes');
    client.socket.end();
    await closing;
  });
});

test('close(): a request whose dial times out during the drain gets its 504, with Connection: close, and the connection closes', async (t) => {
  const dialer = gatedDialer('hang');
  const { proxy } = await proxyWith({ dialer: dialer.dialer, dialerOptions: { connectTimeoutMs: 300 } });
  await withClient(proxy, [], async (client) => {
    client.socket.write(get(1, '/never'));
    t.true(await pollUntil(() => dialer.dials === 1), 'the dial began');
    const closing = proxy.server.close(GRACE_MS);
    await assertRefused(t, proxy.port);
    const answer = await client.reader.next();
    t.is(answer.status, 504);
    t.true(hasToken(answer, 'connection', 'close'), 'Connection: close');
    t.true(await client.reader.waitEnd(), 'then the connection closes (not at the end of the grace period)');
    client.socket.end();
    await closing;
  });
});

test('close(): a request refused by a check that finishes during the drain gets its 403, with Connection: close, and the connection closes', async (t) => {
  const refusing = refusingGate();
  const { proxy } = await proxyWith({ gate: refusing.plugin });
  await withClient(proxy, [], async (client) => {
    client.socket.write(get(1, '/checked'));
    t.true(await pollUntil(() => refusing.checks === 1), 'the check began');
    const closing = proxy.server.close(GRACE_MS);
    await assertRefused(t, proxy.port);
    refusing.open();
    const answer = await client.reader.next();
    t.is(answer.status, 403);
    t.true(hasToken(answer, 'connection', 'close'), 'Connection: close');
    t.true(await client.reader.waitEnd(), 'then the connection closes (not at the end of the grace period)');
    client.socket.end();
    await closing;
  });
});

test('close(): a request whose origin answered before its body ended closes once the body has arrived', async (t) => {
  const release = gate();
  let heads = 0;
  const origin = await startRawOrigin((socket) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (heads > 0 || !text.includes('\r\n\r\n')) return;
      heads++;
      void release.opened.then(() => socket.write(ok('early')));
    });
  });
  const { proxy } = await proxyWith();
  await withClient(proxy, [origin], async (client) => {
    const head = `POST http://127.0.0.1:${origin.port}/up HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nContent-Length: 10\r\n\r\n`;
    client.socket.write(`${head}12345`);
    t.true(await pollUntil(() => heads === 1), 'the head reached the origin');
    const closing = proxy.server.close(GRACE_MS);
    await assertRefused(t, proxy.port);
    release.open();
    const answer = await client.reader.next();
    t.is(answer.body, 'early');
    client.socket.write('67890'); // the rest of the body: the last request pending has arrived
    t.true(await client.reader.waitEnd(), 'then the connection closes (not at the end of the grace period)');
    t.is(client.reader.pending, '');
    client.socket.end();
    await closing;
  });
});

test('close(): a request sent right after a response that said Connection: close is not forwarded, and the connection closes', async (t) => {
  const origin = await gatedOrigin();
  const { proxy } = await proxyWith();
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(get(origin.port, '/first'));
    t.true(await pollUntil(() => origin.requests.length === 1), 'the first request reached the origin');
    const closing = proxy.server.close(GRACE_MS);
    await assertRefused(t, proxy.port);
    origin.open();
    const first = await client.reader.next();
    t.is(first.body, '/first');
    t.true(hasToken(first, 'connection', 'close'), 'the last response due says Connection: close');
    client.socket.write(get(origin.port, '/late')); // a client that does not wait for the FIN
    t.true(await client.reader.waitEnd(), 'the connection closes');
    t.is(client.reader.pending, '', 'the late request gets no response');
    client.socket.end();
    await closing;
    t.deepEqual(origin.lines, ['GET /first HTTP/1.1'], 'the origin never sees the late request');
    t.is(origin.connections, 1, 'and no connection is opened for it');
    t.true(await pollUntil(() => origin.closed === origin.connections), `every origin connection is closed (${origin.closed} of ${origin.connections})`);
  });
});

test('close(): a request sent right after a response that said Connection: close is not forwarded, and the upstream dialled for it is closed (no pooling)', async (t) => {
  const origin = await gatedOrigin();
  const { proxy } = await proxyWith({ dialerOptions: { maxIdlePerOrigin: 0 } });
  await withClient(proxy, [origin], async (client) => {
    client.socket.write(get(origin.port, '/first'));
    t.true(await pollUntil(() => origin.requests.length === 1), 'the first request reached the origin');
    const closing = proxy.server.close(GRACE_MS);
    await assertRefused(t, proxy.port);
    origin.open();
    const first = await client.reader.next();
    t.true(hasToken(first, 'connection', 'close'), 'the last response due says Connection: close');
    client.socket.write(get(origin.port, '/late'));
    t.true(await client.reader.waitEnd(), 'the connection closes');
    client.socket.end();
    await closing;
    t.deepEqual(origin.lines, ['GET /first HTTP/1.1'], 'the origin never sees the late request');
    // The late request is still routed and dialled (a connection with no byte on it); it must not be left open.
    t.true(await pollUntil(() => origin.closed === origin.connections), `every origin connection is closed (${origin.closed} of ${origin.connections})`);
  });
});
