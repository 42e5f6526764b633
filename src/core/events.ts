import type { Exchange } from './exchange.js';
import type { RequestHead } from './http/head.js';
import type { ResponseHead } from './http/response-framing.js';

/** Bytes of a body or of a tunnel; always the Buffer that was read, never a copy. */
export interface DataEvent {
  readonly kind: 'data';
  readonly chunk: Buffer;
}

/** A parsed request head (inbound). */
export interface RequestHeadEvent {
  readonly kind: 'request-head';
  readonly head: RequestHead;
  /** The request this head starts; its response events carry the same object. */
  readonly exchange: Exchange;
}

/** A response head (outbound): interim (1xx) or final. */
export interface ResponseHeadEvent {
  readonly kind: 'response-head';
  readonly head: ResponseHead;
  /** The request this answers. */
  readonly exchange: Exchange;
}

/** The end of a request message (inbound) or of a final response (outbound). */
export interface MessageEndEvent {
  readonly kind: 'message-end';
  readonly exchange: Exchange;
}

/**
 * What flows through the pipeline.
 * Inbound (client → upstream), per request: `request-head`, zero or more `data`, `message-end`;
 * a CONNECT is its head and `message-end`, then tunnel `data`.
 * Outbound (upstream → client), per request in request order: any interim `response-head`s
 * (1xx), the final `response-head`, zero or more `data`, `message-end`; after a CONNECT's 200 or
 * a 101, tunnel `data`.
 */
export type ProxyEvent = DataEvent | RequestHeadEvent | ResponseHeadEvent | MessageEndEvent;

export const dataEvent = (chunk: Buffer): DataEvent => ({ kind: 'data', chunk });
export const requestHeadEvent = (head: RequestHead, exchange: Exchange): RequestHeadEvent => ({ kind: 'request-head', head, exchange });
export const responseHeadEvent = (head: ResponseHead, exchange: Exchange): ResponseHeadEvent => ({ kind: 'response-head', head, exchange });
export const messageEndEvent = (exchange: Exchange): MessageEndEvent => ({ kind: 'message-end', exchange });
