import { Observable } from 'rxjs';
import type { Readable } from 'node:stream';
import { aborted, ProxyError } from './errors.js';
import { dataEvent, type DataEvent } from './events.js';

/**
 * A readable socket as an observable of data events. `end` (a FIN) completes it; a close without
 * `end`, or an error, errors it. The stream is not resumed here: the FlowControl owns pause state.
 */
export function fromReadable(stream: Readable, label: string): Observable<DataEvent> {
  return new Observable<DataEvent>((subscriber) => {
    const onData = (chunk: Buffer) => subscriber.next(dataEvent(chunk));
    const onEnd = () => subscriber.complete();
    const onError = (error: NodeJS.ErrnoException) => subscriber.error(aborted(`${label} ${error.code ?? 'error'}: ${error.message}`));
    const onClose = () => subscriber.error(new ProxyError('ERR_PROXY_ABORTED', `${label} closed`));
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
    return () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
  });
}

const ignore = () => {};

/**
 * Gives a socket one permanent no-op 'error' listener (once, however often it is reused), so its
 * errors are seen through 'close' and the sources, never as an unhandled 'error' event. Whether
 * it has one is read from its listeners, not kept in a WeakSet: adding each new socket to a
 * WeakSet cost about 1.5 % of a new tunnel's CPU (a weak-table insert, and work at every minor GC).
 */
export function guardErrors(socket: NodeJS.EventEmitter): void {
  if (socket.listenerCount('error', ignore) === 0) socket.on('error', ignore);
}
