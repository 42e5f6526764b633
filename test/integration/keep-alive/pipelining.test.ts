// Pipelined requests: several requests in one write are answered in request order.
import test from 'ava';
import { startProxy } from '../../helpers/net.js';
import { get, hasToken, ok, openClient, startKeepAliveOrigin } from '../../helpers/keep-alive.js';

test('A, B, A in one write: three responses in request order, each from its own origin (B is slower)', async (t) => {
  const a = await startKeepAliveOrigin((request) => ok(`A ${request.target}`));
  // B answers only after a delay, so A's second answer is ready first; order must still hold.
  const b = await startKeepAliveOrigin((request) => ({ data: ok(`B ${request.target}`), delayMs: 300 }));
  const proxy = await startProxy();
  const client = await openClient(proxy.port);
  try {
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
  } finally {
    client.socket.destroy();
    await proxy.close();
    await a.close();
    await b.close();
  }
});

test('a request pipelined after one with Connection: close is not forwarded', async (t) => {
  const origin = await startKeepAliveOrigin((request) => ok(`A ${request.target}`));
  const proxy = await startProxy();
  const client = await openClient(proxy.port);
  try {
    client.socket.write(get(origin.port, '/first', 'Connection: close\r\n') + get(origin.port, '/second'));
    const response = await client.reader.next();
    t.is(response.body, 'A /first');
    t.true(hasToken(response, 'connection', 'close'), `headers: ${JSON.stringify(response.headers)}`);
    t.true(await client.reader.waitEnd(), 'the proxy closes after the Connection: close exchange');
    t.is(client.reader.pending, '', 'exactly one response');
    t.deepEqual(origin.lines, ['GET /first HTTP/1.1']);
    t.false(origin.received.join('').includes('/second'), 'not a byte of the second request reached the origin');
  } finally {
    client.socket.destroy();
    await proxy.close();
    await origin.close();
  }
});
