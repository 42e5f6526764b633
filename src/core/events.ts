import type { RequestHead } from './http/head.js';

/** Bytes of a body or of a tunnel; always the Buffer that was read, never a copy. */
export interface DataEvent {
  readonly kind: 'data';
  readonly chunk: Buffer;
}

/** A parsed request head (inbound only). */
export interface RequestHeadEvent {
  readonly kind: 'request-head';
  readonly head: RequestHead;
}

/** The end of one request message (after its body, if any). */
export interface MessageEndEvent {
  readonly kind: 'message-end';
}

/**
 * What flows through the pipeline. Inbound (client → upstream) a request is
 * `request-head`, zero or more `data`, then `message-end`; a tunnel is plain `data`.
 * A CONNECT is its head and `message-end`, then tunnel `data`. Outbound (upstream → client) is `data`.
 */
export type ProxyEvent = DataEvent | RequestHeadEvent | MessageEndEvent;

export const dataEvent = (chunk: Buffer): DataEvent => ({ kind: 'data', chunk });
export const requestHeadEvent = (head: RequestHead): RequestHeadEvent => ({ kind: 'request-head', head });
export const MESSAGE_END: MessageEndEvent = Object.freeze({ kind: 'message-end' });
