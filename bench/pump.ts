// The sender of the throughput runs: as fast as backpressure allows, from one preallocated buffer.
import type { Writable } from 'node:stream';

const CHUNK = Buffer.alloc(64 * 1024, 0x61);

/** Writes `total` bytes in 64 KiB chunks, waiting for 'drain' when the socket is full; returns a
 *  function telling how many bytes were handed to the socket so far. */
export function pump(socket: Writable, total: number, done: () => void): () => number {
  let sent = 0;
  const write = (): void => {
    while (sent < total && !socket.destroyed) {
      const n = Math.min(CHUNK.length, total - sent);
      sent += n;
      if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void socket.once('drain', write);
    }
    done();
  };
  write();
  return () => sent;
}
