import type { Observer } from 'rxjs';
import type { Writable } from 'node:stream';
import { ProxyError } from './errors.js';
import type { FlowControl } from './flow-control.js';

/** How a sink reports back to the connection that owns it. */
export interface SinkHooks {
  /** Called with each chunk before it is written (e.g. to mark that a response has started). */
  onWrite?(chunk: Buffer): void;
  /** Called when the source completed and the destination was ended. */
  onComplete(): void;
  /** Called when the pipeline feeding the sink errored. */
  onError(error: unknown): void;
}

/**
 * Writes chunks to a socket and carries backpressure back to the source: when `write()` returns
 * false the source is held paused (reason `sink`) until the destination drains.
 * Completion ends the destination (a half-close), it never destroys it.
 */
export function toWritable(destination: Writable, flow: FlowControl, hooks: SinkHooks): Observer<Buffer> {
  let waitingForDrain = false;
  const onDrain = () => {
    waitingForDrain = false;
    flow.release('sink');
  };
  return {
    next(chunk) {
      if (destination.destroyed) {
        // Never drop bytes silently: the connection must learn its peer is gone.
        hooks.onError(new ProxyError('ERR_PROXY_ABORTED', 'destination closed while data was still flowing'));
        return;
      }
      hooks.onWrite?.(chunk);
      if (!destination.write(chunk) && !waitingForDrain) {
        waitingForDrain = true;
        flow.hold('sink');
        destination.once('drain', onDrain);
      }
    },
    complete() {
      if (!destination.destroyed && !destination.writableEnded) destination.end();
      hooks.onComplete();
    },
    error(error) {
      hooks.onError(error);
    },
  };
}
