import type { MonoTypeOperatorFunction, Observable } from 'rxjs';
import type { ConnectionContext } from './context.js';
import type { ProxyEvent } from './events.js';
import { requestHeadLength, serializeRequestHead } from './http/head.js';
import { forClient, responseHeadLength, serializeResponseHead } from './http/response-head.js';
import type { ProxyPlugin } from './plugin.js';

/** Applies operators in order (`pipe` with a runtime-length list). */
export function compose<T>(source: Observable<T>, operators: readonly MonoTypeOperatorFunction<T>[]): Observable<T> {
  return operators.reduce((stream, operator) => operator(stream), source);
}

/** The inbound operators of the chain, in plugins.json order. */
export function inboundStages(plugins: readonly ProxyPlugin[], ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent>[] {
  return plugins.flatMap((plugin) => (plugin.inbound ? [plugin.inbound(ctx)] : []));
}

/** The outbound operators of the chain, in reverse plugins.json order. */
export function outboundStages(plugins: readonly ProxyPlugin[], ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent>[] {
  return plugins.flatMap((plugin) => (plugin.outbound ? [plugin.outbound(ctx)] : [])).reverse();
}

const EMPTY = Buffer.alloc(0);

/** Turns an event into wire bytes at the end of a chain: heads are serialized, markers write nothing. */
export function encodeEvent(event: ProxyEvent): Buffer {
  switch (event.kind) {
    case 'data':
      return event.chunk;
    case 'request-head':
      return serializeRequestHead(event.head);
    case 'response-head':
      return serializeResponseHead(forClient(event.head, event.exchange));
    case 'message-end':
      return EMPTY;
  }
}

/** The bytes an event puts on the wire (heads as serialized, without building them; markers 0). */
export function wireLength(event: ProxyEvent): number {
  switch (event.kind) {
    case 'data':
      return event.chunk.length;
    case 'request-head':
      return requestHeadLength(event.head);
    case 'response-head':
      return responseHeadLength(event.head);
    case 'message-end':
      return 0;
  }
}
