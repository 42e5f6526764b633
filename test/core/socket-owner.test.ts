// setOwner on real loopback sockets: events reach the owner of the moment, bytes that arrive
// while nobody owns the socket wait for the next owner, and a FIN then kills the connection.
import test from 'ava';
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { setOwner, type SocketOwner } from '../../src/core/socket-owner.js';

/** A connected pair on 127.0.0.1: `near` is the socket under test, `far` its peer. */
async function socketPair(): Promise<{ near: net.Socket; far: net.Socket; close: () => void }> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const near = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [far] = (await accepted) as [net.Socket];
  await once(near, 'connect');
  return {
    near,
    far,
    close: () => {
      near.destroy();
      far.destroy();
      server.close();
    },
  };
}

class Recorder implements SocketOwner {
  readonly seen: string[] = [];
  private waiter?: () => void;

  ownedData(_socket: Duplex, chunk: Buffer): void {
    this.record(`data:${chunk.toString()}`);
  }

  ownedEnd(): void {
    this.record('end');
  }

  ownedClose(): void {
    this.record('close');
  }

  /** Resolves once `count` events were seen (or rejects after 2 s). */
  async until(count: number): Promise<void> {
    if (this.seen.length >= count) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`saw only ${this.seen.join(', ')}`)), 2000);
      this.waiter = () => {
        if (this.seen.length < count) return;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private record(event: string): void {
    this.seen.push(event);
    this.waiter?.();
  }
}

test('data, FIN and close go to the owner of the moment', async (t) => {
  const { near, far, close } = await socketPair();
  try {
    const first = new Recorder();
    const second = new Recorder();
    setOwner(near, first);
    far.write('one');
    await first.until(1);
    setOwner(near, second);
    far.end('two');
    await second.until(2);
    near.end();
    await second.until(3);
    t.deepEqual(first.seen, ['data:one']);
    t.deepEqual(second.seen, ['data:two', 'end', 'close']);
    t.is(near.listenerCount('data'), 1, 'one data listener whatever the number of owners');
  } finally {
    close();
  }
});

test('bytes that arrive while nobody owns the socket wait, paused, for the next owner', async (t) => {
  const { near, far, close } = await socketPair();
  try {
    const owner = new Recorder();
    setOwner(near, owner);
    setOwner(near, undefined);
    far.write('early');
    await once(near, 'pause');
    t.true(near.isPaused());
    setOwner(near, owner);
    near.resume();
    await owner.until(1);
    t.deepEqual(owner.seen, ['data:early']);
    t.false(near.destroyed);
  } finally {
    close();
  }
});

test('a FIN while nobody owns the socket destroys it', async (t) => {
  const { near, far, close } = await socketPair();
  try {
    setOwner(near, new Recorder());
    setOwner(near, undefined);
    far.end();
    await once(near, 'close');
    t.true(near.destroyed);
  } finally {
    close();
  }
});
