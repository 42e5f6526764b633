import type { MonoTypeOperatorFunction, Observable, Subscriber } from 'rxjs';
import type { ConnectionContext } from './context.js';
import type { ProxyEvent } from './events.js';
import { requestHeadLength, serializeRequestHead } from './http/head.js';
import { forClient, responseHeadLength, serializeResponseHead } from './http/response-head.js';
import type { ProxyPlugin } from './plugin.js';
import type { StageOperator } from './stage.js';

/**
 * Subscribes `sink` to `source` through `operators`, in order. The stages that end the list
 * (made by `stage()`, as every built-in plugin's are) are linked directly, each one the next
 * one's upstream subscriber: what the Observable of each would do on subscribe, without an
 * Observable, a subscribe and a closure per stage for every connection. Any other operator, and
 * everything before it, is applied as an operator. A stage that throws while being built throws
 * here.
 */
export function subscribeThrough(
  source: Observable<ProxyEvent>,
  operators: readonly MonoTypeOperatorFunction<ProxyEvent>[],
  sink: Subscriber<ProxyEvent>,
): void {
  let downstream = sink;
  let rest = operators.length;
  for (; rest > 0; rest--) {
    const create = (operators[rest - 1] as Partial<StageOperator>).createStage;
    if (!create) break;
    downstream = create(downstream);
  }
  let stream = source;
  for (let i = 0; i < rest; i++) stream = operators[i]!(stream);
  stream.subscribe(downstream);
}

/** The inbound operators of the chain, in plugins.json order. */
export function inboundStages(plugins: readonly ProxyPlugin[], ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent>[] {
  const operators: MonoTypeOperatorFunction<ProxyEvent>[] = [];
  for (const plugin of plugins) if (plugin.inbound) operators.push(plugin.inbound(ctx));
  return operators;
}

/** The outbound operators of the chain, in reverse plugins.json order. */
export function outboundStages(plugins: readonly ProxyPlugin[], ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent>[] {
  const operators: MonoTypeOperatorFunction<ProxyEvent>[] = [];
  for (let i = plugins.length - 1; i >= 0; i--) {
    const plugin = plugins[i]!;
    if (plugin.outbound) operators.push(plugin.outbound(ctx));
  }
  return operators;
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
