// The upstream pool of upstream-dialer: idle origin connections are reused across requests and
// clients, expire after idleTimeoutMs, are capped by maxIdlePerOrigin, and are never reused when
// they cannot safely carry another request (tunnels, Connection: close, bytes after the response).
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { startHttpOrigin, startProxy } from '../../helpers/net.js';
import { pollUntil } from '../../helpers/wire.js';
import { exchange, get, ok, openClient, startKeepAliveOrigin, startNumberingOrigin, sleep, withClient } from '../../helpers/keep-alive.js';

/** The default chain with options for upstream-dialer. */
const chain = (dialer: Record<string, unknown>) => [
  'head-parser',
  'connect-handler',
  'http-forward',
  { name: 'upstream-dialer', options: dialer },
  'byte-counter',
  'logger',
];

/** One GET on a fresh client connection, which is closed afterwards. */
async function oneRequest(proxyPort: number, originPort: number, path: string) {
  const client = await openClient(proxyPort);
  try {
    return await exchange(client, get(originPort, path));
  } finally {
    client.socket.destroy();
  }
}

test('20 sequential requests on one client connection use exactly 1 origin connection', async (t) => {
  const origin = await startNumberingOrigin();
  await withClient(startProxy(), [origin], async (client) => {
    for (let i = 0; i < 20; i++) {
      const response = await exchange(client, get(origin.port, `/r${i}`));
      t.is(response.body, `o:1:/r${i}`);
    }
    t.is(origin.connections, 1);
  });
});

test('two client connections one after another share 1 origin connection', async (t) => {
  const origin = await startNumberingOrigin();
  const proxy = await startProxy();
  try {
    t.is((await oneRequest(proxy.port, origin.port, '/first')).body, 'o:1:/first');
    t.is((await oneRequest(proxy.port, origin.port, '/second')).body, 'o:1:/second');
    t.is(origin.connections, 1);
    t.is(origin.closed, 0, 'the pooled origin connection outlives the client connection');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('idleTimeoutMs: 200: after the idle time the next request uses a new origin connection', async (t) => {
  const origin = await startNumberingOrigin();
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  try {
    // Inside the try: today the option is unknown and startProxy throws; the origin must still close.
    proxy = await startProxy({ plugins: chain({ idleTimeoutMs: 200 }) });
    // The pool works with this option: the second request reuses the first connection.
    t.is((await oneRequest(proxy.port, origin.port, '/1')).body, 'o:1:/1');
    t.is((await oneRequest(proxy.port, origin.port, '/2')).body, 'o:1:/2');
    await sleep(600);
    t.is((await oneRequest(proxy.port, origin.port, '/3')).body, 'o:2:/3');
    t.is(origin.connections, 2);
    t.true(await pollUntil(() => origin.closed === 1, 120), 'the expired connection was closed');
  } finally {
    await proxy?.close();
    await origin.close();
  }
});

test('maxIdlePerOrigin: 1: of two parallel connections one stays idle, and a third request reuses it', async (t) => {
  // The origin holds its answers until both requests are in, so the proxy must use two connections.
  const waiting: (() => void)[] = [];
  const numbers = new WeakMap<net.Socket, number>();
  let counter = 0;
  let closed = 0;
  let paired = true;
  const origin = await startHttpOrigin((request: http.IncomingMessage, response: http.ServerResponse) => {
    request.resume();
    request.on('end', () => {
      waiting.push(() => response.end(`o:${numbers.get(request.socket)}:${request.url}`));
      if (waiting.length >= 2 || !paired) for (const send of waiting.splice(0)) send();
    });
  });
  origin.server.keepAliveTimeout = 60_000;
  origin.server.on('connection', (socket: net.Socket) => {
    numbers.set(socket, ++counter);
    socket.once('close', () => closed++);
  });
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  // Safety: never hold an answer forever if the second request does not come.
  const release = setInterval(() => {
    for (const send of waiting.splice(0)) send();
  }, 2_000);
  try {
    proxy = await startProxy({ plugins: chain({ maxIdlePerOrigin: 1 }) });
    const [left, right] = await Promise.all([oneRequest(proxy.port, origin.port, '/left'), oneRequest(proxy.port, origin.port, '/right')]);
    t.regex(left.body, /^o:[12]:\/left$/);
    t.regex(right.body, /^o:[12]:\/right$/);
    t.not(left.body.split(':')[1], right.body.split(':')[1], 'the parallel requests used two origin connections');
    t.is(origin.connections, 2);
    t.true(await pollUntil(() => closed === 1, 120), 'the pool keeps one idle connection and closes the other');
    // A lone request now: the origin answers at once.
    paired = false;
    const third = (await oneRequest(proxy.port, origin.port, '/third')).body;
    t.regex(third, /^o:[12]:\/third$/);
    t.is(origin.connections, 2, 'the third request reused the idle connection');
    t.is(closed, 1);
  } finally {
    clearInterval(release);
    for (const send of waiting.splice(0)) send();
    await proxy?.close();
    await origin.close();
  }
});

test("a CONNECT tunnel's upstream is never reused for plain requests", async (t) => {
  const origin = await startNumberingOrigin();
  const proxy = await startProxy();
  await withClient(proxy, [origin], async (tunnel) => {
    tunnel.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
    // The 200 has no body; take it as a HEAD-like answer, then speak HTTP to the origin inside.
    const established = await tunnel.reader.next({ method: 'HEAD' });
    t.is(established.status, 200);
    const inside = await exchange(tunnel, `GET /in-tunnel HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
    t.is(inside.body, 'o:1:/in-tunnel');
    // While the tunnel is open, and after it closed, plain requests get connections of their own.
    t.is((await oneRequest(proxy.port, origin.port, '/while-open')).body, 'o:2:/while-open');
    tunnel.socket.end();
    t.true(await tunnel.reader.waitEnd(), 'the tunnel closes');
    t.true(await pollUntil(() => origin.closed >= 1, 120), "the tunnel's upstream was closed, not pooled");
    t.is((await oneRequest(proxy.port, origin.port, '/after')).body, 'o:2:/after', 'the plain request reuses the plain connection');
    t.is(origin.connections, 2);
  });
});

test('an upstream that answered with Connection: close is not reused', async (t) => {
  // The origin says close but keeps the socket open: only the header tells the proxy not to reuse.
  const origin = await startKeepAliveOrigin((request) =>
    request.target === '/close' ? ok(`c${request.connection}`, 'Connection: close\r\n') : ok(`c${request.connection}`),
  );
  const proxy = await startProxy();
  try {
    t.is((await oneRequest(proxy.port, origin.port, '/a')).body, 'c1');
    t.is((await oneRequest(proxy.port, origin.port, '/b')).body, 'c1', 'the pool works for this origin');
    t.is((await oneRequest(proxy.port, origin.port, '/close')).body, 'c1');
    t.is((await oneRequest(proxy.port, origin.port, '/c')).body, 'c2');
    t.is(origin.connections, 2);
    t.true(await pollUntil(() => origin.closed >= 1, 120), 'the proxy closed the upstream that asked for close');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('an upstream that sent bytes after the end of its response is not reused', async (t) => {
  const origin = await startKeepAliveOrigin((request) =>
    request.target === '/extra' ? ok(`c${request.connection}`) + 'EXTRA-GARBAGE' : ok(`c${request.connection}`),
  );
  const proxy = await startProxy();
  await withClient(proxy, [origin], async (client) => {
    t.is((await oneRequest(proxy.port, origin.port, '/a')).body, 'c1');
    t.is((await oneRequest(proxy.port, origin.port, '/b')).body, 'c1', 'the pool works for this origin');
    const extra = await exchange(client, get(origin.port, '/extra'));
    t.is(extra.body, 'c1');
    t.is((await oneRequest(proxy.port, origin.port, '/c')).body, 'c2');
    t.is(origin.connections, 2);
    t.false(client.reader.pending.includes('EXTRA'), 'the stray bytes did not reach the client');
  });
});
