import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import test from 'ava';
import { connectTo, openTunnel, readUntil, startHttpsOrigin, startProxy, startRawOrigin, TLS, withTunnel } from '../helpers/net.js';
import { closed, collect, pollUntil } from '../helpers/wire.js';

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/** An echo origin: returns every byte, and ends when the client ends. */
const echo = (socket: net.Socket) => socket.pipe(socket);

test('CONNECT to an https origin carries a real TLS handshake and an HTTPS request', async (t) => {
  const origin = await startHttpsOrigin((request, response) => {
    response.setHeader('Connection', 'close');
    response.end(`secure ${request.method} ${request.url}`);
  });
  await withTunnel(startProxy(), `localhost:${origin.port}`, [origin], async ({ socket, head }) => {
    t.is(head, ESTABLISHED);
    const secure = tls.connect({ socket, ca: TLS.cert, servername: 'localhost' });
    secure.on('error', () => {});
    try {
      await once(secure, 'secureConnect');
      t.true(secure.authorized);
      const response = collect(secure);
      secure.write(`GET /inside?x=1 HTTP/1.1\r\nHost: localhost:${origin.port}\r\nConnection: close\r\n\r\n`);
      const { text } = await response;
      t.regex(text, /^HTTP\/1\.1 200 OK\r\n/);
      t.true(text.endsWith('\r\n\r\nsecure GET /inside?x=1'));
    } finally {
      secure.destroy();
    }
  });
});

for (const host of ['localhost', '127.0.0.1']) {
  test(`CONNECT ${host}:port reaches the origin and answers exactly 200 Connection Established`, async (t) => {
    const origin = await startRawOrigin(echo);
    await withTunnel(startProxy(), `${host}:${origin.port}`, [origin], async ({ socket, head }) => {
      t.is(head, ESTABLISHED);
      socket.write('ping');
      t.is(await readUntil(socket, (text) => text.length >= 4), 'ping');
    });
  });
}

test('CONNECT [::1]:port reaches an origin listening on ::1', async (t) => {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    echo(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '::1', () => resolve());
    });
  } catch (error) {
    t.log(`::1 is not available here (${(error as Error).message}); skipped`);
    t.pass();
    return;
  }
  const port = (server.address() as net.AddressInfo).port;
  const proxy = await startProxy();
  const { socket, head } = await openTunnel(proxy.port, `[::1]:${port}`);
  try {
    t.is(head, ESTABLISHED);
    socket.write('over ipv6');
    t.is(await readUntil(socket, (text) => text.length >= 9), 'over ipv6');
  } finally {
    socket.destroy();
    for (const open of sockets) open.destroy();
    await new Promise((resolve) => server.close(resolve));
    await proxy.close();
  }
});

test('the 200 answer is exactly the status line and an empty line, with nothing else before tunnel bytes', async (t) => {
  const origin = await startRawOrigin((socket) => socket.write('origin speaks first'));
  const proxy = await startProxy();
  const socket = await connectTo(proxy.port, `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
  try {
    const text = await readUntil(socket, (received) => received.length >= ESTABLISHED.length + 'origin speaks first'.length);
    t.is(text, ESTABLISHED + 'origin speaks first');
  } finally {
    socket.destroy();
    await origin.close();
    await proxy.close();
  }
});

test('bytes written in the same write as the CONNECT head reach the origin', async (t) => {
  let received = '';
  let resolveEarly!: () => void;
  const gotAll = new Promise<void>((resolve) => (resolveEarly = resolve));
  const origin = await startRawOrigin((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.length >= 'early bytes, then more'.length) resolveEarly();
    });
  });
  const proxy = await startProxy();
  const socket = await connectTo(proxy.port, `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\nearly bytes`);
  try {
    const head = await readUntil(socket, (text) => text.includes('\r\n\r\n'));
    t.is(head, ESTABLISHED);
    socket.write(', then more');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([gotAll, new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]); // safety limit only
    clearTimeout(timer);
    t.is(received, 'early bytes, then more');
  } finally {
    socket.destroy();
    await origin.close();
    await proxy.close();
  }
});

test('a 5 MB echo through the tunnel comes back byte-identical', async (t) => {
  const origin = await startRawOrigin(echo);
  const proxy = await startProxy();
  const payload = randomBytes(5 * 1024 * 1024);
  await withTunnel(proxy, `127.0.0.1:${origin.port}`, [origin], async ({ socket, head }) => {
    t.is(head, ESTABLISHED);
    const result = collect(socket, 60_000);
    for (let offset = 0; offset < payload.length; offset += 256 * 1024) socket.write(payload.subarray(offset, offset + 256 * 1024));
    socket.end();
    const { text, how } = await result;
    t.is(how, 'end');
    const echoed = Buffer.from(text, 'latin1');
    t.is(echoed.length, payload.length);
    t.true(echoed.equals(payload));
  });
});

test('CONNECT with Connection: close is still a tunnel: 200 without Connection, bytes both ways, closed when both sides end', async (t) => {
  let originClosed = false;
  const origin = await startRawOrigin((socket) => {
    socket.on('close', () => (originClosed = true));
    echo(socket);
  });
  const proxy = await startProxy();
  const socket = await connectTo(proxy.port, `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: close\r\n\r\n`);
  try {
    const head = await readUntil(socket, (text) => text.includes('\r\n\r\n'));
    t.is(head, ESTABLISHED);
    t.false(/connection:/i.test(head));
    socket.write('first');
    t.is(await readUntil(socket, (text) => text.length >= 5), 'first');
    // Still open after a round trip: the Connection: close did not end it after the 200.
    socket.write('second');
    t.is(await readUntil(socket, (text) => text.length >= 6), 'second');
    const rest = collect(socket);
    socket.end('last');
    const { text, how } = await rest;
    t.is(how, 'end');
    t.is(text, 'last');
    await closed(socket);
    t.true(await pollUntil(() => originClosed && proxy.server.connections === 0));
  } finally {
    socket.destroy();
    await origin.close();
    await proxy.close();
  }
});

test('with Connection: close, early data in the same write as the CONNECT head reaches the origin first and intact, unparsed', async (t) => {
  // Early bytes that look like a request head, then binary: the parser must hand them on as they are.
  const early = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), randomBytes(64 * 1024)]);
  const later = randomBytes(16 * 1024);
  const chunks: Buffer[] = [];
  let total = 0;
  let resolveAll!: () => void;
  const gotAll = new Promise<void>((resolve) => (resolveAll = resolve));
  const origin = await startRawOrigin((socket) => {
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= early.length + later.length) resolveAll();
    });
  });
  const proxy = await startProxy();
  const connect = `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: close\r\n\r\n`;
  const socket = await connectTo(proxy.port, Buffer.concat([Buffer.from(connect), early]));
  try {
    const head = await readUntil(socket, (text) => text.includes('\r\n\r\n'));
    t.is(head, ESTABLISHED);
    socket.write(later);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([gotAll, new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]); // safety limit only
    clearTimeout(timer);
    t.true(Buffer.concat(chunks).equals(Buffer.concat([early, later])));
  } finally {
    socket.destroy();
    await origin.close();
    await proxy.close();
  }
});
