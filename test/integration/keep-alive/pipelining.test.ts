// Pipelined requests: several requests in one write are answered in request order.
import test from 'ava';
import { startProxy } from '../../helpers/net.js';
import { get, hasToken, ok, openClient, startKeepAliveOrigin, withClient } from '../../helpers/keep-alive.js';

test('A, B, A in one write: three responses in request order, each from its own origin (B is slower)', async (t) => {
  const a = await startKeepAliveOrigin((request) => ok(`A ${request.target}`));
  // B answers only after a delay, so A's second answer is ready first; order must still hold.
  const b = await startKeepAliveOrigin((request) => ({ data: ok(`B ${request.target}`), delayMs: 300 }));
  await withClient(startProxy(), [a, b], async (client) => {
    client.socket.write(get(a.port, '/a1') + get(b.port, '/b') + get(a.port, '/a2'));
    const bodies: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await client.reader.next();
      t.is(response.status, 200);
      bodies.push(response.body);
    }
    t.deepEqual(bodies, ['A /a1', 'B /b', 'A /a2']);
    t.deepEqual(a.lines, ['GET /a1 HTTP/1.1', 'GET /a2 HTTP/1.1']);
    t.deepEqual(b.lines, ['GET /b HTTP/1.1']);
    t.is(client.reader.pending, '', 'nothing more than the three responses');
  });
});

test('a request pipelined after one with Connection: close is not forwarded', async (t) => {
  const origin = await startKeepAliveOrigin((request) => ok(`A ${request.target}`));
  await withClient(startProxy(), [origin], async (client) => {
    client.socket.write(get(origin.port, '/first', 'Connection: close\r\n') + get(origin.port, '/second'));
    const response = await client.reader.next();
    t.is(response.body, 'A /first');
    t.true(hasToken(response, 'connection', 'close'), `headers: ${JSON.stringify(response.headers)}`);
    t.true(await client.reader.waitEnd(), 'the proxy closes after the Connection: close exchange');
    t.is(client.reader.pending, '', 'exactly one response');
    t.deepEqual(origin.lines, ['GET /first HTTP/1.1']);
    t.false(origin.received.join('').includes('/second'), 'not a byte of the second request reached the origin');
  });
});

test('a client pipelining more than 32 requests waits: at most 32 are in flight upstream at once', async (t) => {
  // The origin holds every answer until released, so requests pile up in flight.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const origin = await startKeepAliveOrigin(async (request) => {
    await released;
    return ok(`A ${request.target}`);
  });
  const proxy = await startProxy();
  const client = await openClient(proxy.port);
  const total = 40;
  try {
    // One request per write, spaced, so each arrives in its own read.
    for (let i = 0; i < total; i++) {
      client.socket.write(get(origin.port, `/${i}`));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.is(origin.lines.length, 32, 'the 33rd request waits for a response');
    release();
    for (let i = 0; i < total; i++) t.is((await client.reader.next()).body, `A /${i}`);
    t.is(origin.lines.length, total);
  } finally {
    release();
    client.socket.destroy();
    await proxy.close();
    await origin.close();
  }
});
