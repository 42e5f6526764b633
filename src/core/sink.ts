import { Subscriber } from 'rxjs';
import type { Writable } from 'node:stream';
import { ProxyError } from './errors.js';
import type { ProxyEvent } from './events.js';
import type { FlowControl } from './flow-control.js';
import { encodeEvent } from './pipeline.js';

/** Who the client sink reports to: the connection (methods, so no closures per connection). */
export interface SinkOwner {
  /** The chain completed: the owner half-closes the client. */
  sinkCompleted(sink: SocketSink): void;
  /** The chain errored, or the socket is gone while data still flows. */
  sinkFailed(sink: SocketSink, error: unknown): void;
  /** A chunk is about to be written. */
  sinkWriting(sink: SocketSink): void;
}

/**
 * The end of the outbound chain: encodes events to bytes and writes them to the client socket,
 * carrying backpressure back to the source: when `write()` returns false the source is held
 * paused (reason `sink`) until the socket drains.
 */
export class SocketSink extends Subscriber<ProxyEvent> {
  private waitingForDrain = false;
  private readonly onDrain = () => {
    this.waitingForDrain = false;
    this.flow.release('sink');
  };

  constructor(
    private readonly flow: FlowControl,
    private readonly owner: SinkOwner,
    private readonly socket: Writable,
  ) {
    super();
  }

  /** Half-closes the socket (FIN) once what was written is flushed. */
  end(): void {
    const { socket } = this;
    if (!socket.destroyed && !socket.writableEnded) socket.end();
  }

  protected override _next(event: ProxyEvent): void {
    const chunk = encodeEvent(event);
    if (chunk.length === 0) return;
    const { socket } = this;
    if (socket.destroyed) {
      // Never drop bytes silently: the connection must learn its peer is gone.
      this.owner.sinkFailed(this, new ProxyError('ERR_PROXY_ABORTED', 'destination closed while data was still flowing'));
      return;
    }
    this.owner.sinkWriting(this);
    // A head is usually followed by body bytes from the same read: send them in one write.
    if (event.kind === 'response-head' || event.kind === 'request-head') corkForThisTick(socket);
    if (!socket.write(chunk) && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.flow.hold('sink');
      socket.once('drain', this.onDrain);
    }
  }

  protected override _complete(): void {
    this.owner.sinkCompleted(this);
    this.unsubscribe();
  }

  protected override _error(error: unknown): void {
    this.owner.sinkFailed(this, error);
    this.unsubscribe();
  }
}

const corked = new Set<Writable>();
const uncorkAll = () => {
  for (const socket of corked) socket.uncork();
  corked.clear();
};

/**
 * Batches the writes one input chunk causes (a head and its body) into one system call: the
 * socket is corked when a head is written and uncorked in a microtask, once the synchronous
 * pipeline run for that chunk is over. Only heads cork: tunnel and body bytes go straight out.
 */
export function corkForThisTick(socket: Writable): void {
  if (corked.has(socket)) return;
  if (corked.size === 0) queueMicrotask(uncorkAll);
  corked.add(socket);
  socket.cork();
}
