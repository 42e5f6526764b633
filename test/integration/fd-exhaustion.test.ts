// The real CLI under `ulimit -n`: running out of file descriptors must shed load, never crash.
import { readdirSync } from 'node:fs';
import net from 'node:net';
import test from 'ava';
import { connectTo, orClose, proxiedRequest, readUntil, startHttpOrigin } from '../helpers/net.js';
import { startProxyProcess } from '../helpers/proxy-process.js';

/** The child's descriptor limit: small, so a few dozen connections exhaust it. */
const LIMIT = 64;
/** Connections the test opens at most while filling the child up. */
const MAX_CLIENTS = 200;
/** Slots freed for requests whose dial then fails; more than the warnings the throttle may let through. */
const FAILING_DIALS = 6;
/** No pooled upstreams: each one would hold a descriptor the counts below do not expect. */
const CHAIN = [{ name: 'head-parser' }, { name: 'http-forward' }, { name: 'upstream-dialer', options: { maxIdlePerOrigin: 0 } }];
const DIAL_WARNING = /^\S+ warn dial failed: out of file descriptors \(EMFILE\); answering 503 (\{.*\})$/gm;

/**
 * Descriptors the process `pid` has open now below {@link LIMIT}: the ones a new descriptor competes
 * with (one inherited from the test's own parent may sit above the limit, open but out of the way).
 */
function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => Number(fd) < LIMIT).length;
}

/** Polls `predicate` every 10 ms until it holds; fails after `timeoutMs` naming `what`. */
async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (let waited = 0; !predicate(); waited += 10) {
    if (waited >= timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A client connection, and whether the proxy closed it (a connection it shed closes with no byte). */
interface Client {
  socket: net.Socket;
  closed: boolean;
  received: number;
}

async function connectClient(port: number): Promise<Client> {
  const socket = await connectTo(port);
  const client: Client = { socket, closed: false, received: 0 };
  socket.on('data', (chunk: Buffer) => (client.received += chunk.length));
  socket.once('end', () => (client.closed = true));
  socket.once('close', () => (client.closed = true));
  return client;
}

test('out of descriptors: accepts are shed, dials get 503 with a throttled warning, and service resumes', async (t) => {
  const origin = await startHttpOrigin((_request, response) => response.end('ok'));
  const proxy = await orClose(startProxyProcess(CHAIN, { fdLimit: LIMIT }), origin);
  const clients: Client[] = [];
  try {
    const { pid, port } = proxy;
    const alive = () => proxy.child.exitCode === null && proxy.child.signalCode === null;
    const base = fdCount(pid);
    t.true(base < LIMIT - FAILING_DIALS - 2, `the child starts with ${base} descriptors, too many for a limit of ${LIMIT}`);

    // Fill the child up, one connection at a time: each served one holds one more descriptor,
    // until one is closed at once without a byte (libuv's reserve-descriptor trick sheds it).
    let shed: Client | undefined;
    while (!shed && clients.length < MAX_CLIENTS) {
      const before = fdCount(pid);
      const client = await connectClient(port);
      clients.push(client);
      await waitFor('the proxy to take or shed a connection', () => client.closed || fdCount(pid) > before);
      if (client.closed) shed = client;
    }
    t.truthy(shed, `still served after ${clients.length} connections`);
    t.is(shed!.received, 0, 'a shed connection is closed without an answer');
    t.is(fdCount(pid), LIMIT, 'connections were served until no descriptor was left');
    t.true(alive(), 'the proxy survives running out of descriptors while accepting');

    // Free a few slots: the next connections take them, so each request is accepted, but its dial
    // has no descriptor left for the upstream socket.
    const held = clients.filter((client) => !client.closed);
    for (const client of held.slice(0, FAILING_DIALS)) client.socket.resetAndDestroy();
    await waitFor('the proxy to close the reset connections', () => fdCount(pid) === LIMIT - FAILING_DIALS);
    const failing: Client[] = [];
    for (let i = 0; i < FAILING_DIALS; i++) failing.push(await connectClient(port));
    clients.push(...failing);
    await waitFor('the proxy to take the new connections', () => fdCount(pid) === LIMIT);
    t.true(
      failing.every((client) => !client.closed),
      'connections on freed slots are served',
    );

    const request = `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`;
    // Every request goes out before any answer comes back, so all the dials meet a full table.
    const answers = failing.map((client) => readUntil(client.socket, (text) => /\r\n\r\n[^\n]*\n/.test(text)));
    for (const client of failing) client.socket.write(request);
    for (const answer of await Promise.all(answers)) {
      t.regex(answer, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      t.regex(answer, /\r\nRetry-After: 1\r\n/);
      const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      t.is(body, `cannot connect to 127.0.0.1:${origin.port}: the proxy is out of file descriptors (EMFILE)\n`);
    }
    t.is(origin.connections, 0, 'no dial reached the origin');
    t.true(alive(), 'the proxy survives dials failing for lack of descriptors');

    // Everything closes: descriptors free up, and the proxy accepts and dials again.
    for (const client of clients) client.socket.destroy();
    await waitFor('the proxy to close every connection', () => fdCount(pid) <= base);
    const after = await proxiedRequest(port, `http://127.0.0.1:${origin.port}/`);
    t.is(after.status, 200);
    t.is(after.body.toString(), 'ok');
    t.true(alive());

    // One warning per second at most, each counting what it stood for: far fewer lines than failures.
    await waitFor('the dial warning on stderr', () => proxy.stderr().includes(' warn dial failed: '));
    const stderr = proxy.stderr();
    const warnings = [...stderr.matchAll(DIAL_WARNING)];
    t.true(warnings.length >= 1 && warnings.length <= 3, `${warnings.length} warnings for ${FAILING_DIALS} failed dials:\n${stderr}`);
    const first = JSON.parse(warnings[0]![1]!) as { target: string; dialsFailedSinceLastWarning: number };
    t.deepEqual(first, { target: `127.0.0.1:${origin.port}`, dialsFailedSinceLastWarning: 1 });
    const counts = warnings.map((match) => (JSON.parse(match[1]!) as { dialsFailedSinceLastWarning: number }).dialsFailedSinceLastWarning);
    t.true(counts.reduce((sum, count) => sum + count, 0) <= FAILING_DIALS, 'each warning counts the failures since the one before');
    // Nothing else was logged: no unhandled error, no warning per shed connection.
    const others = stderr.split('\n').filter((line) => line !== '' && !/ warn dial failed: /.test(line));
    t.deepEqual(others, []);
  } finally {
    for (const client of clients) client.socket.destroy();
    await proxy.close();
    await origin.close();
  }
});
