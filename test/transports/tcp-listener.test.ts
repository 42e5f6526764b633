import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import test from 'ava';
import type { LogFields, Logger } from '../../src/core/logger.js';
import { createStats } from '../../src/core/stats.js';
import { TcpListener } from '../../src/transports/tcp-listener.js';
import { connectTo } from '../helpers/net.js';

/** Keeps every warning. */
class Warnings implements Logger {
  readonly records: { message: string; fields?: LogFields }[] = [];
  info(): void {}
  warn(message: string, fields?: LogFields): void {
    this.records.push({ message, fields });
  }
  error(): void {}
}

/** A failed accept as Node's net reports it (an ErrnoException with syscall `accept`). */
function acceptError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`accept ${code}`), { code, errno: -24, syscall: 'accept' });
}

// On Linux, Node 20's libuv sheds EMFILE/ENFILE accepts itself and never reports them (see the
// fd-exhaustion integration test); other platforms and libuv versions emit the server's 'error'.
// The event is emitted here as net emits it, on the server behind an accepted socket.
test('a failed accept after listening is counted and warned about once a second; the listener keeps accepting', async (t) => {
  const logger = new Warnings();
  const stats = createStats();
  const listener = new TcpListener('127.0.0.1', 0, { logger, stats });
  const accepted: Duplex[] = [];
  let arrived: (() => void) | undefined;
  const { port } = await listener.listen((socket) => {
    accepted.push(socket);
    arrived?.();
  });
  const clients: net.Socket[] = [];
  try {
    const first = new Promise<void>((resolve) => (arrived = resolve));
    clients.push(await connectTo(port));
    await first;
    const server = (accepted[0] as net.Socket & { server: net.Server }).server;
    t.true(server instanceof net.Server);

    for (let i = 0; i < 50; i++) server.emit('error', acceptError(i % 2 ? 'ENFILE' : 'EMFILE'));
    t.is(stats.acceptErrors, 50);
    t.is(logger.records.length, 1, JSON.stringify(logger.records));
    t.deepEqual(logger.records[0], {
      message: 'accept failed: out of file descriptors (EMFILE); a connection was dropped, still listening',
      fields: { acceptErrorsSinceLastWarning: 1 },
    });

    const second = new Promise<void>((resolve) => (arrived = resolve));
    clients.push(await connectTo(port));
    await second;
    t.is(accepted.length, 2, 'still listening');
  } finally {
    for (const client of clients) client.destroy();
    for (const socket of accepted) socket.destroy();
    await listener.close();
  }
});

test('an error while binding still rejects listen(), and is not counted as a failed accept', async (t) => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  try {
    const { port } = blocker.address() as net.AddressInfo;
    const stats = createStats();
    const listener = new TcpListener('127.0.0.1', port, { logger: new Warnings(), stats });
    const error = await t.throwsAsync(listener.listen(() => {}));
    t.is((error as NodeJS.ErrnoException).code, 'EADDRINUSE');
    t.is(stats.acceptErrors, 0);
    await listener.close();
  } finally {
    blocker.close();
  }
});
