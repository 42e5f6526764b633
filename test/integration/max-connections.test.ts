// maxConnections: over the cap a new client connection is closed at accept, with no byte read,
// answered or dialled. Through the real CLI (--max-connections) and in process (stats).
import type net from 'node:net';
import test from 'ava';
import { get, openClient, ResponseReader, sleep, type WireResponse } from '../helpers/keep-alive.js';
import { orClose, startHttpOrigin, startProxy } from '../helpers/net.js';
import { startProxyProcess } from '../helpers/proxy-process.js';
import { pollUntil } from '../helpers/wire.js';
import { DEFAULT_CHAIN } from '../../src/plugins/index.js';

/** One read's bound: generous, the box is noisy; a refused connection closes long before it. */
const READ_MS = 10_000;
/** New connections tried at most while the proxy notices that a client left. */
const RETRIES = 100;

interface Client {
  socket: net.Socket;
  reader: ResponseReader;
}

/** What one new connection with one request got: a response, or closed with no byte (refused). */
type Attempt = { client: Client; response: WireResponse } | { client: Client; refused: true };

/** Connects, sends one GET for `path` through the proxy, and reads the answer or the close. */
async function attempt(proxyPort: number, originPort: number, path: string): Promise<Attempt> {
  const client = await openClient(proxyPort);
  client.socket.write(get(originPort, path));
  try {
    return { client, response: await client.reader.next({ timeoutMs: READ_MS }) };
  } catch (error) {
    if (client.reader.isEnded && client.reader.pending === '') return { client, refused: true };
    client.socket.destroy();
    throw error;
  }
}

/** A node:http origin that records every request path it got. */
async function recordingOrigin() {
  const paths: string[] = [];
  const origin = await startHttpOrigin((request, response) => {
    paths.push(request.url ?? '');
    request.resume();
    request.on('end', () => response.end(`ok ${request.url}`));
  });
  origin.server.keepAliveTimeout = 60_000;
  return { ...origin, paths };
}

/** Sends one more request on a kept-alive client and checks its answer. */
async function stillServes(client: Client, originPort: number, path: string): Promise<string> {
  client.socket.write(get(originPort, path));
  const response = await client.reader.next({ timeoutMs: READ_MS });
  return `${response.status} ${response.body}`;
}

/**
 * Tries new connections (bounded) until one is served: the proxy forgets a closed connection on
 * its own schedule, so the first tries may still be refused. Returns the served one and the
 * paths of the refused tries.
 */
async function firstServed(proxyPort: number, originPort: number, prefix: string) {
  const refused: string[] = [];
  for (let i = 0; i < RETRIES; i++) {
    const path = `${prefix}-${i}`;
    const result = await attempt(proxyPort, originPort, path);
    if ('response' in result) return { ...result, path, refused };
    result.client.socket.destroy();
    refused.push(path);
    await sleep(20);
  }
  throw new Error(`no connection served after ${RETRIES} tries`);
}

test('the CLI with --max-connections 3: a 4th connection is closed with no byte and no dial, the 3 still work, a freed slot serves again', async (t) => {
  const origin = await recordingOrigin();
  const proxy = await orClose(
    startProxyProcess(
      DEFAULT_CHAIN.map((name) => ({ name })),
      { args: ['--max-connections', '3'] },
    ),
    origin,
  );
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const result = await attempt(proxy.port, origin.port, `/c${i}`);
      clients.push(result.client);
      t.true('response' in result, `connection ${i} was refused`);
      if ('response' in result) {
        t.is(result.response.status, 200);
        t.is(result.response.body, `ok /c${i}`);
      }
      t.false(result.client.reader.isEnded, `connection ${i} is kept alive`);
    }

    const fourth = await attempt(proxy.port, origin.port, '/fourth');
    clients.push(fourth.client);
    t.true('refused' in fourth, 'the 4th connection was served');
    t.is(fourth.client.reader.pending, '', 'a refused connection gets no byte');

    for (let i = 0; i < 3; i++) t.is(await stillServes(clients[i]!, origin.port, `/again${i}`), `200 ok /again${i}`);

    clients[0]!.socket.end();
    t.true(await clients[0]!.reader.waitEnd(READ_MS), 'the proxy ends a client that ended');
    const served = await firstServed(proxy.port, origin.port, '/after');
    clients.push(served.client);
    t.log(`tries refused while the proxy noticed the close: ${served.refused.length}`);
    t.is(served.response.status, 200);
    t.is(served.response.body, `ok ${served.path}`);

    // No refused connection's request reached the origin.
    t.deepEqual(origin.paths, ['/c0', '/c1', '/c2', '/again0', '/again1', '/again2', served.path]);
    t.is(proxy.child.exitCode, null);
  } finally {
    for (const client of clients) client.socket.destroy();
    await proxy.close();
    await origin.close();
  }
});

test('in process: maxConnections 2 refuses the 3rd and 4th connections and counts them in stats.connectionsRefused', async (t) => {
  const origin = await recordingOrigin();
  const proxy = await startProxy({ maxConnections: 2 });
  const clients: Client[] = [];
  try {
    t.is(proxy.server.stats.connectionsRefused, 0);
    for (let i = 0; i < 2; i++) {
      const result = await attempt(proxy.port, origin.port, `/c${i}`);
      clients.push(result.client);
      t.true('response' in result && result.response.status === 200, `connection ${i} was not served`);
    }
    t.is(proxy.server.connections, 2);

    for (let i = 0; i < 2; i++) {
      const result = await attempt(proxy.port, origin.port, `/over${i}`);
      clients.push(result.client);
      t.true('refused' in result, `connection over the cap ${i} was served`);
      t.is(result.client.reader.pending, '');
      t.is(proxy.server.stats.connectionsRefused, i + 1);
    }
    t.is(proxy.server.connections, 2);

    clients[1]!.socket.destroy();
    t.true(await pollUntil(() => proxy.server.connections === 1), 'the proxy forgets a closed connection');
    const served = await attempt(proxy.port, origin.port, '/after');
    clients.push(served.client);
    t.true('response' in served && served.response.body === 'ok /after');
    t.is(await stillServes(clients[0]!, origin.port, '/again'), '200 ok /again');
    t.is(proxy.server.stats.connectionsRefused, 2);
    t.deepEqual(origin.paths, ['/c0', '/c1', '/after', '/again']);
  } finally {
    for (const client of clients) client.socket.destroy();
    await proxy.close();
    await origin.close();
  }
});
