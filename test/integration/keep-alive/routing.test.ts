// Keep-alive on the client side: routing each request of one connection to its own origin, and
// when the proxy keeps or closes the client connection.
import http from 'node:http';
import test from 'ava';
import { startProxy } from '../../helpers/net.js';
import { exchange, get, hasToken, ok, startKeepAliveOrigin, WAIT_MS, withClient } from '../../helpers/keep-alive.js';

/** An origin that answers `<name> <path>` and records request lines. */
const named = (name: string) => startKeepAliveOrigin((request) => ok(`${name} ${request.target}`));

test('one client connection: A, then B, then A each reach their own origin, answers in order', async (t) => {
  const a = await named('A');
  const b = await named('B');
  await withClient(startProxy(), [a, b], async (client) => {
    const first = await exchange(client, get(a.port, '/one'));
    t.is(first.status, 200);
    t.is(first.body, 'A /one');
    const second = await exchange(client, get(b.port, '/two'));
    t.is(second.status, 200);
    t.is(second.body, 'B /two');
    const third = await exchange(client, get(a.port, '/three'));
    t.is(third.status, 200);
    t.is(third.body, 'A /three');
    t.deepEqual(a.lines, ['GET /one HTTP/1.1', 'GET /three HTTP/1.1']);
    t.deepEqual(b.lines, ['GET /two HTTP/1.1']);
    t.false(client.reader.isEnded, 'the client connection is still open');
  });
});

test('Connection: close from the client: the answer says Connection: close and the proxy closes', async (t) => {
  const origin = await named('A');
  await withClient(startProxy(), [origin], async (client) => {
    const response = await exchange(client, get(origin.port, '/bye', 'Connection: close\r\n'));
    t.is(response.status, 200);
    t.is(response.body, 'A /bye');
    t.true(hasToken(response, 'connection', 'close'), `headers: ${JSON.stringify(response.headers)}`);
    t.true(await client.reader.waitEnd(), 'the proxy closes the client connection');
    t.is(client.reader.pending, '', 'nothing after the response');
  });
});

test('HTTP/1.0 without keep-alive: the connection is closed after the response', async (t) => {
  const origin = await named('A');
  await withClient(startProxy(), [origin], async (client) => {
    const response = await exchange(client, `GET http://127.0.0.1:${origin.port}/old HTTP/1.0\r\n\r\n`);
    t.is(response.status, 200);
    t.is(response.body, 'A /old');
    t.false(hasToken(response, 'connection', 'keep-alive'));
    t.true(await client.reader.waitEnd(), 'the proxy closes the client connection');
  });
});

test('HTTP/1.0 with Connection: keep-alive: the answer says keep-alive and a second request works', async (t) => {
  const origin = await named('A');
  await withClient(startProxy(), [origin], async (client) => {
    const first = await exchange(client, `GET http://127.0.0.1:${origin.port}/first HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`);
    t.is(first.status, 200);
    t.is(first.body, 'A /first');
    t.true(hasToken(first, 'connection', 'keep-alive'), `headers: ${JSON.stringify(first.headers)}`);
    t.false(client.reader.isEnded);
    const second = await exchange(client, `GET http://127.0.0.1:${origin.port}/second HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`);
    t.is(second.status, 200);
    t.is(second.body, 'A /second');
    t.deepEqual(origin.lines, ['GET /first HTTP/1.1', 'GET /second HTTP/1.1']);
  });
});

test('HTTP/1.1 stays open by default: a second request on the connection works', async (t) => {
  const origin = await named('A');
  await withClient(startProxy(), [origin], async (client) => {
    const first = await exchange(client, get(origin.port, '/1'));
    t.is(first.body, 'A /1');
    t.false(hasToken(first, 'connection', 'close'), `headers: ${JSON.stringify(first.headers)}`);
    const second = await exchange(client, get(origin.port, '/2'));
    t.is(second.status, 200);
    t.is(second.body, 'A /2');
  });
});

/** One request through a keep-alive agent; resolves status, body and whether the socket was reused. */
function agentRequest(agent: http.Agent, proxyPort: number, url: string) {
  return new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port: proxyPort, path: url, agent, timeout: WAIT_MS });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${WAIT_MS} ms`)));
    request.on('error', reject);
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString(), reused: request.reusedSocket }));
    });
    request.end();
  });
}

test('node:http keep-alive agent (maxSockets 1): sequential requests to two origins reuse one client socket', async (t) => {
  const a = await named('A');
  const b = await named('B');
  const proxy = await startProxy();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let sockets = 0;
  try {
    const plan: [string, number, string][] = [
      ['A', a.port, '/a1'],
      ['B', b.port, '/b1'],
      ['A', a.port, '/a2'],
      ['B', b.port, '/b2'],
    ];
    const reused: boolean[] = [];
    for (const [name, port, path] of plan) {
      const response = await agentRequest(agent, proxy.port, `http://127.0.0.1:${port}${path}`);
      t.is(response.status, 200);
      t.is(response.body, `${name} ${path}`);
      reused.push(response.reused);
      if (!response.reused) sockets++;
    }
    t.deepEqual(reused, [false, true, true, true], 'every request after the first reuses the socket');
    t.is(sockets, 1);
    t.deepEqual(a.lines, ['GET /a1 HTTP/1.1', 'GET /a2 HTTP/1.1']);
    t.deepEqual(b.lines, ['GET /b1 HTTP/1.1', 'GET /b2 HTTP/1.1']);
  } finally {
    agent.destroy();
    await proxy.close();
    await a.close();
    await b.close();
  }
});
