import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../core/errors.js';
import type { Target } from '../core/context.js';
import { Logger, StreamLogger } from '../core/logger.js';
import { createStats, type ProxyStats } from '../core/stats.js';
import { Throttle } from '../core/throttle.js';
import type { Dialer } from '../core/transport.js';
import { isOutOfDescriptors, type TransportServices } from './transport-services.js';

/** Words for the errno codes a client can act on; anything else is shown by its code. */
const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name resolution failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
};

/** Tells the client when to try again after a 503 for lack of descriptors (they free up fast). */
const RETRY_AFTER = [['Retry-After', '1']] as const;

/**
 * The buffer a dialled socket reads into (Node's `onread`) while its reads are small, shared by
 * all of them: a read is taken out of it synchronously, in its callback, before any other socket
 * reads, so one buffer serves them all and an idle connection holds none. Each read is copied out
 * at its own size and emitted as the socket's 'data', which skips the stream machinery a read
 * otherwise goes through (its buffer list, its next-tick read-ahead): 4–7 % less proxy CPU per
 * kept-alive request, measured.
 */
const SHARED_BUFFER = Buffer.allocUnsafe(64 * 1024);

/**
 * A read that fills its buffer means more is waiting (a download, a tunnel's bulk): unless that
 * read made the socket pause (its destination is full), its next read goes into a buffer of this
 * size of its own, handed on without a copy, and so on while reads fill them. Four times fewer
 * reads, events through the chain and writes per byte: about 20 % less proxy CPU per GB from
 * origin to client, measured. A socket holds one only between a full read and the next one.
 */
const BULK_BUFFER_BYTES = 256 * 1024;

/** A read into a bulk buffer smaller than this is copied out, so that no chunk pins more than twice its size. */
const BULK_HANDOVER_MIN = BULK_BUFFER_BYTES / 2;

/**
 * Set by `emitRead` for `nextReadBuffer`, which Node calls right after it (both synchronously,
 * for the same socket): whether that socket's next read gets a bulk buffer.
 */
let nextReadIsBulk = false;

/**
 * Emits one read as a 'data' chunk of its own; true: go on reading (a listener pauses as it
 * would). Node calls it as a method of the socket, with the buffer the read went into.
 */
function emitRead(this: net.Socket, bytes: number, buffer: Buffer): boolean {
  const handOver = buffer !== SHARED_BUFFER && bytes >= BULK_HANDOVER_MIN;
  this.emit('data', handOver ? buffer.subarray(0, bytes) : Buffer.from(buffer.subarray(0, bytes)));
  // Decided after the listeners ran: one may have paused or destroyed this socket, or dialled (a
  // new socket takes its first buffer from nextReadBuffer too).
  nextReadIsBulk = bytes === buffer.length && !this.isPaused() && !this.destroyed;
  return true;
}

/** The buffer for a socket's next read (Node calls it after each read, and for a socket's first). */
function nextReadBuffer(): Buffer {
  const bulk = nextReadIsBulk;
  nextReadIsBulk = false;
  return bulk ? Buffer.allocUnsafe(BULK_BUFFER_BYTES) : SHARED_BUFFER;
}

/** The `onread` option of every dial (one object: Node copies what it needs from it). */
const ON_READ = { buffer: nextReadBuffer, callback: emitRead };

/**
 * Dials plain TCP with half-close allowed (Nagle stays on until a connection becomes a tunnel),
 * small reads going through one buffer shared by all dialled sockets, bulk ones through buffers of their own.
 * A dial that fails for lack of file descriptors (EMFILE/ENFILE, from the socket or from the name
 * lookup) is the proxy's condition, not the upstream's: 503 rather than 502, counted, and warned
 * about at most once a second.
 */
export class TcpDialer implements Dialer {
  private readonly logger: Logger;
  private readonly stats: ProxyStats;
  private readonly exhaustionWarnings = new Throttle(1000);

  constructor(services: TransportServices = {}) {
    this.logger = services.logger ?? new StreamLogger();
    this.stats = services.stats ?? createStats();
  }

  dial(target: Target, signal: AbortSignal): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const where = net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
      const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, onread: ON_READ });
      const onAbort = () => {
        socket.destroy();
        reject(new ProxyError('ERR_PROXY_ABORTED', `dial to ${where} aborted`));
      };
      const onError = (error: NodeJS.ErrnoException) => {
        signal.removeEventListener('abort', onAbort);
        reject(this.failure(error, where));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        signal.removeEventListener('abort', onAbort);
        // Nothing may be read until the outbound pipeline subscribes and owns the flow.
        socket.pause();
        resolve(socket);
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The ProxyError a failed connect to `where` answers with. */
  private failure(error: NodeJS.ErrnoException, where: string): ProxyError {
    if (isOutOfDescriptors(error.code)) return this.exhausted(error, where);
    const cause = (error.code && CAUSES[error.code]) ?? error.code ?? error.message;
    return new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `cannot connect to ${where}: ${cause}`, { cause: error });
  }

  private exhausted(error: NodeJS.ErrnoException, where: string): ProxyError {
    this.stats.dialNoResources++;
    const held = this.exhaustionWarnings.take();
    if (held !== undefined) {
      const fields = { target: where, dialsFailedSinceLastWarning: held + 1 };
      this.logger.warn(`dial failed: out of file descriptors (${error.code}); answering 503`, fields);
    }
    return new ProxyError('ERR_PROXY_NO_RESOURCES', `cannot connect to ${where}: the proxy is out of file descriptors (${error.code})`, {
      cause: error,
      headers: RETRY_AFTER,
    });
  }
}
