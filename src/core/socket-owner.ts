import type { Duplex } from 'node:stream';

/**
 * Whoever reads an upstream socket at the moment: the response source of a client connection
 * while a response is due, the upstream pool while the connection is idle.
 */
export interface SocketOwner {
  /** Bytes arrived on `socket`. */
  ownedData(socket: Duplex, chunk: Buffer): void;
  /** The peer half-closed `socket` (FIN). */
  ownedEnd(socket: Duplex): void;
  /** `socket` closed. */
  ownedClose(socket: Duplex): void;
}

const OWNER = Symbol('proxyline.socket-owner');

/** A socket with listeners installed: `null` while nobody owns it. */
type Owned = Duplex & { [OWNER]?: SocketOwner | null };

/**
 * Hands `socket` to a new owner, or to none. The socket gets one set of listeners for its whole
 * life, installed on first use, that forward to its owner of the moment: a kept-alive upstream
 * passes from a client connection to the pool and back for every request, and adding and removing
 * three listeners each way cost more than the request's parsing. Bytes that arrive while nobody
 * owns the socket (a pooled upstream taken for a pipelined request that waits its turn) are put
 * back and the socket paused, for the next owner; a FIN then means the connection is dead.
 */
export function setOwner(socket: Duplex, owner: SocketOwner | undefined): void {
  const owned = socket as Owned;
  if (owned[OWNER] === undefined) {
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
  }
  owned[OWNER] = owner ?? null;
}

function onData(this: Owned, chunk: Buffer): void {
  const owner = this[OWNER];
  if (owner) return owner.ownedData(this, chunk);
  this.pause();
  this.unshift(chunk);
}

function onEnd(this: Owned): void {
  const owner = this[OWNER];
  if (owner) owner.ownedEnd(this);
  else this.destroy();
}

function onClose(this: Owned): void {
  this[OWNER]?.ownedClose(this);
}
