import { once } from 'node:events';
import net from 'node:net';
import test from 'ava';
import { connectTo, openTunnel, readUntil, startProxy, startRawOrigin } from '../helpers/net.js';

const echo = (socket: net.Socket) => socket.pipe(socket);

test('close() stops accepting but lets open tunnels finish within the grace period', async (t) => {
  const origin = await startRawOrigin(echo);
  const proxy = await startProxy();
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    t.is(proxy.server.connections, 1);
    const closing = proxy.server.close(10_000);
    const refused = net.connect(proxy.port, '127.0.0.1');
    const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    t.is(error.code, 'ECONNREFUSED');
    socket.write('still open');
    t.is(await readUntil(socket, (text) => text === 'still open'), 'still open');
    socket.end();
    await closing;
    t.is(proxy.server.connections, 0);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('close() destroys what is still open when the grace period ends', async (t) => {
  const origin = await startRawOrigin(echo);
  const proxy = await startProxy();
  try {
    const { socket } = await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
    const idle = await connectTo(proxy.port);
    const ended = Promise.all([once(socket, 'end'), once(idle, 'end')]);
    await proxy.server.close(50);
    t.is(proxy.server.connections, 0);
    await ended; // both clients see the proxy's side close
    socket.destroy();
    idle.destroy();
  } finally {
    await origin.close();
  }
});

test('address() reports the bound port', async (t) => {
  const proxy = await startProxy();
  try {
    t.deepEqual(proxy.server.address(), { host: '127.0.0.1', port: proxy.port });
  } finally {
    await proxy.close();
  }
});
