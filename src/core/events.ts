import type { Exchange } from './exchange.js';
import type { RequestHead } from './http/head.js';
import type { ResponseHead } from './http/response-framing.js';

/** Bytes of a body or of a tunnel; always the Buffer that was read, never a copy. */
export interface DataEvent {
  /** Tells the events apart in a `switch`. */
  readonly kind: 'data';
  /** The bytes as framed on the wire: a chunked body keeps its chunk-size lines. */
  readonly chunk: Buffer;
}

/** A parsed request head (inbound). */
export interface RequestHeadEvent {
  /** Tells the events apart in a `switch`. */
  readonly kind: 'request-head';
  /** The head as earlier stages left it; to change it, emit a new event with a new head. */
  readonly head: RequestHead;
  /** The request this head starts; its response events carry the same object. */
  readonly exchange: Exchange;
}

/** A response head (outbound): interim (1xx) or final. */
export interface ResponseHeadEvent {
  /** Tells the events apart in a `switch`. */
  readonly kind: 'response-head';
  /** The head as earlier stages left it; to change it, emit a new event with a new head. */
  readonly head: ResponseHead;
  /** The request this answers. */
  readonly exchange: Exchange;
}

/** The end of a request message (inbound) or of a final response (outbound). */
export interface MessageEndEvent {
  /** Tells the events apart in a `switch`. */
  readonly kind: 'message-end';
  /** The request whose message ended. */
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

/** Makes a `data` event, for a stage that emits bytes of its own. */
export const dataEvent = (chunk: Buffer): DataEvent => ({ kind: 'data', chunk });
/** Makes a `request-head` event, the way a stage passes on a changed head. */
export const requestHeadEvent = (head: RequestHead, exchange: Exchange): RequestHeadEvent => ({ kind: 'request-head', head, exchange });
/** Makes a `response-head` event, the way a stage passes on a changed head. */
export const responseHeadEvent = (head: ResponseHead, exchange: Exchange): ResponseHeadEvent => ({ kind: 'response-head', head, exchange });
/** Makes a `message-end` event, for a stage that ends a message it produced. */
export const messageEndEvent = (exchange: Exchange): MessageEndEvent => ({ kind: 'message-end', exchange });
