import type net from 'node:net';
import test from 'ava';
import { startProxy, startRawOrigin } from '../../helpers/net.js';
import { withClient } from '../../helpers/keep-alive.js';

/**
 * An origin whose first connection answers one request and then, at the next request on it,
 * closes without a word — what a pooled connection that timed out idle looks like to the proxy.
 * Later connections answer every request. Records every request line per connection.
 */
async function closingOrigin() {
  const lines: string[][] = [];
  const origin = await startRawOrigin((socket: net.Socket) => {
    const index = lines.push([]) - 1;
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        buffered = buffered.slice(end + 4 + length);
        lines[index]!.push(head.split('\r\n')[0]!);
        if (index === 0 && lines[0]!.length === 2) return void socket.destroy();
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n${index}${lines[index]!.length}`);
      }
    });
  });
  return { origin, lines };
}

test('an idempotent request whose pooled upstream closes before answering is sent again on a fresh one', async (t) => {
  const { origin, lines } = await closingOrigin();
  await withClient(startProxy(), [origin], async ({ socket, reader }) => {
    socket.write(`GET http://127.0.0.1:${origin.port}/one HTTP/1.1\r\nHost: a\r\n\r\n`);
    t.is((await reader.next()).body, '01');
    socket.write(`GET http://127.0.0.1:${origin.port}/two HTTP/1.1\r\nHost: a\r\n\r\n`);
    const second = await reader.next();
    t.is(second.status, 200);
    t.is(second.body, '11', 'answered by the second origin connection');
    t.deepEqual(lines, [['GET /one HTTP/1.1', 'GET /two HTTP/1.1'], ['GET /two HTTP/1.1']]);
  });
});

test('a request with a body is not sent again: the client gets 502', async (t) => {
  const { origin, lines } = await closingOrigin();
  await withClient(startProxy(), [origin], async ({ socket, reader }) => {
    socket.write(`GET http://127.0.0.1:${origin.port}/one HTTP/1.1\r\nHost: a\r\n\r\n`);
    t.is((await reader.next()).body, '01');
    socket.write(`PUT http://127.0.0.1:${origin.port}/two HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody`);
    const second = await reader.next();
    t.is(second.status, 502);
    t.is(lines.length, 1, 'no second origin connection');
  });
});
