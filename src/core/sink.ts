import { Subscriber } from 'rxjs';
import type { Writable } from 'node:stream';
import type { ClientDialect } from './dialect.js';
import { ProxyError } from './errors.js';
import type { ProxyEvent } from './events.js';
import type { Exchange } from './exchange.js';
import type { FlowControl } from './flow-control.js';
import type { ResponseHead } from './http/response-framing.js';
import { forClient, serializeResponseHead } from './http/response-head.js';
import { encodeEvent } from './pipeline.js';

/** Who the client sink reports to: the connection (methods, so no closures per connection). */
export interface SinkOwner {
  /** The chain completed: the owner half-closes the client. */
  sinkCompleted(sink: SocketSink): void;
  /** The chain errored, or the socket is gone while data still flows. */
  sinkFailed(sink: SocketSink, error: unknown): void;
  /** A chunk is about to be written. */
  sinkWriting(sink: SocketSink): void;
  /** A response was written to its end. */
  sinkResponseEnded(exchange: Exchange): void;
}

/**
 * Holds a message head until the bytes that follow it in the same pipeline run, then writes both
 * as one buffer: a kept-alive response (head + body read together) costs one plain write, not a
 * cork, a buffered pair and a writev. Bytes that do not follow in this run (a bodiless message,
 * a body still on its way) leave the head to be written when the run ends (a microtask). Used by
 * both sinks; `write` is the sink's own, so its backpressure applies to the joined buffer.
 */
export class HeadCoalescer {
  private socket?: Writable;
  private head?: Buffer;

  constructor(private readonly write: (socket: Writable, chunk: Buffer) => void) {}

  /** Holds `head` for `socket` (after any head still held for another socket). */
  hold(socket: Writable, head: Buffer): void {
    if (this.head && this.socket !== socket) this.flush();
    if (this.head) {
      this.head = Buffer.concat([this.head, head]); // an interim (1xx) head and the final one
      return;
    }
    this.socket = socket;
    this.head = head;
    // A resolved promise's reaction, not queueMicrotask: Node wraps each queued microtask in an
    // async resource and a bound function, garbage for every response that has a head.
    if (due.length === 0) void RESOLVED.then(flushDue);
    due.push(this);
  }

  /** Writes `chunk` to `socket`, joined to the head held for it if there is one. */
  data(socket: Writable, chunk: Buffer): void {
    const head = this.head;
    if (head) {
      if (this.socket === socket && chunk.length <= JOIN_LIMIT) {
        this.head = this.socket = undefined;
        return this.write(socket, Buffer.concat([head, chunk], head.length + chunk.length));
      }
      this.flush();
    }
    this.write(socket, chunk);
  }

  /** Writes the held head now, if any (a message ended, the sink completes). */
  flush(): void {
    const { head, socket } = this;
    if (!head) return;
    this.head = this.socket = undefined;
    this.write(socket!, head);
  }
}

/** Larger body chunks are written after the head rather than copied behind it. */
const JOIN_LIMIT = 16 * 1024;

/** Coalescers holding a head when the current run ends; emptied, not replaced, at each flush. */
const due: HeadCoalescer[] = [];
const RESOLVED = Promise.resolve();
const flushDue = () => {
  // A flush writes, and a write starts nothing synchronously that holds a head again; should one
  // do so, it is appended and flushed in this same loop.
  try {
    for (let i = 0; i < due.length; i++) due[i]!.flush();
  } finally {
    due.length = 0; // whatever happened, the next held head schedules a flush again
  }
};

/**
 * The end of the outbound chain: encodes events to bytes and writes them to the client socket,
 * carrying backpressure back to the source: when `write()` returns false the source is held
 * paused (reason `sink`) until the socket drains.
 */
export class SocketSink extends Subscriber<ProxyEvent> {
  /** The exchange whose response is being written (a tunnel's, once it became one). */
  relaying?: Exchange;
  private waitingForDrain = false;
  /** The body of an answer a dialect replaced is being dropped (until its message end). */
  private muted = false;
  private readonly onDrain = () => {
    this.waitingForDrain = false;
    this.flow.release('sink');
  };

  private readonly heads = new HeadCoalescer((socket, chunk) => this.write(socket, chunk));

  constructor(
    private readonly flow: FlowControl,
    private readonly owner: SinkOwner,
    private readonly socket: Writable,
    /** Set for a client that does not speak HTTP: it turns response heads into its replies. */
    private readonly dialect?: ClientDialect,
  ) {
    super();
  }

  /** Half-closes the socket (FIN) once what was written is flushed. */
  end(): void {
    this.heads.flush();
    const { socket } = this;
    if (!socket.destroyed && !socket.writableEnded) socket.end();
  }

  protected override _next(event: ProxyEvent): void {
    if (event.kind === 'message-end') {
      this.heads.flush();
      this.relaying = undefined;
      this.muted = false;
      return this.owner.sinkResponseEnded(event.exchange);
    }
    if (event.kind === 'response-head') return this.writeHead(event.exchange, forClient(event.head, event.exchange));
    if (this.muted) return;
    const chunk = encodeEvent(event);
    if (chunk.length === 0 || !this.writable()) return;
    this.heads.data(this.socket, chunk);
  }

  /** Writes a response head as the client gets it, and keeps the final one on its exchange for the records. */
  private writeHead(exchange: Exchange, head: ResponseHead): void {
    if (this.dialect) return this.writeDialectHead(this.dialect, exchange, head);
    this.relaying = exchange;
    const chunk = serializeResponseHead(head);
    if (!this.writable()) return;
    if (head.status >= 200 || head.status === 101) exchange.sentResponse = head; // interim 1xx heads are not kept
    this.heads.hold(this.socket, chunk);
  }

  /**
   * A final head in the client's own protocol; an interim one has no equivalent there. Only a
   * head that starts a tunnel (a CONNECT's 2xx, a 101) lets bytes follow it: any other answer's
   * body is dropped (the synthesized request asked to close, so the connection ends after it).
   */
  private writeDialectHead(dialect: ClientDialect, exchange: Exchange, head: ResponseHead): void {
    if (head.status < 200 && head.status !== 101) return;
    this.relaying = exchange;
    if (!this.writable()) return;
    exchange.sentResponse = head;
    this.muted = !(head.status === 101 || (exchange.isConnect && head.status < 300));
    this.heads.hold(this.socket, dialect.reply(head, exchange, exchange.error));
  }

  /** Reports a socket gone while data still flows (never drop bytes silently), else that a write is coming. */
  private writable(): boolean {
    if (this.socket.destroyed) {
      this.owner.sinkFailed(this, new ProxyError('ERR_PROXY_ABORTED', 'destination closed while data was still flowing'));
      return false;
    }
    this.owner.sinkWriting(this);
    return true;
  }

  protected override _complete(): void {
    this.heads.flush();
    this.owner.sinkCompleted(this);
    this.unsubscribe();
  }

  private write(socket: Writable, chunk: Buffer): void {
    if (socket.destroyed) return; // the connection hears of it through 'close'
    if (!socket.write(chunk) && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.flow.hold('sink');
      socket.once('drain', this.onDrain);
    }
  }

  protected override _error(error: unknown): void {
    this.owner.sinkFailed(this, error);
    this.unsubscribe();
  }
}
