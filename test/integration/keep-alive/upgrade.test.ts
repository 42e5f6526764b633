// Upgrade (WebSocket-style) through the proxy: the Upgrade request reaches the origin with its
// Upgrade and Connection fields; after a 101 the connection carries raw bytes both ways; after any
// other answer it stays HTTP.
import net from 'node:net';
import test from 'ava';
import { startProxy, startRawOrigin } from '../../helpers/net.js';
import { exchange, get, hasToken, header, ok, parseHead, startKeepAliveOrigin, WAIT_MS, withClient } from '../../helpers/keep-alive.js';
import { pollUntil } from '../../helpers/wire.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function upgradeRequest(port: number): string {
  return (
    `GET http://127.0.0.1:${port}/ws HTTP/1.1\r\n` +
    `Host: 127.0.0.1:${port}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${KEY}\r\n` +
    'Sec-WebSocket-Version: 13\r\n' +
    '\r\n'
  );
}

/** Reads from the reader's socket until `expected` bytes arrived after what was pending (bounded). */
async function readBytes(socket: net.Socket, already: string, length: number): Promise<string> {
  let text = already;
  const onData = (chunk: Buffer) => (text += chunk.toString('latin1'));
  socket.on('data', onData);
  try {
    await pollUntil(() => text.length >= length, WAIT_MS / 25);
    return text;
  } finally {
    socket.off('data', onData);
  }
}

test('Upgrade: websocket: the origin gets Upgrade and Connection, then bytes flow both ways after 101', async (t) => {
  let head = '';
  // After the head, the origin answers 101 and echoes every byte it gets, prefixed once with a greeting.
  const origin = await startRawOrigin((socket) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      head = buffer.slice(0, end);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello-from-origin|');
      const rest = buffer.slice(end + 4);
      if (rest) socket.write(rest);
      socket.pipe(socket);
    };
    socket.on('data', onData);
  });
  await withClient(startProxy(), [origin], async (client) => {
    client.socket.write(upgradeRequest(origin.port));
    const switching = await client.reader.next();
    t.is(switching.status, 101);
    t.true(hasToken(switching, 'connection', 'upgrade'), `headers: ${JSON.stringify(switching.headers)}`);
    t.is(header(switching, 'upgrade')?.toLowerCase(), 'websocket');
    const seen = parseHead(head);
    t.is(seen.firstLine, 'GET /ws HTTP/1.1');
    t.is(header(seen, 'upgrade'), 'websocket', `origin saw: ${JSON.stringify(head)}`);
    t.true(hasToken(seen, 'connection', 'upgrade'), `origin saw: ${JSON.stringify(head)}`);
    t.is(header(seen, 'sec-websocket-key'), KEY);
    // Origin to client: the greeting, then client to origin and back: the echo.
    const greeting = 'hello-from-origin|';
    const message = '\x81\x05ping!\x00\xff raw bytes, not HTTP\r\n\r\n';
    client.socket.write(Buffer.from(message, 'latin1'));
    const got = await readBytes(client.socket, client.reader.pending, greeting.length + message.length);
    t.is(got, greeting + message);
  });
});

test('an Upgrade request answered 200 instead of 101: the connection stays HTTP and a second request works', async (t) => {
  const origin = await startKeepAliveOrigin((request) => ok(`plain ${request.target}`));
  await withClient(startProxy(), [origin], async (client) => {
    const first = await exchange(client, upgradeRequest(origin.port));
    t.is(first.status, 200);
    t.is(first.body, 'plain /ws');
    const second = await exchange(client, get(origin.port, '/after'));
    t.is(second.status, 200);
    t.is(second.body, 'plain /after');
    t.deepEqual(origin.lines, ['GET /ws HTTP/1.1', 'GET /after HTTP/1.1']);
  });
});
