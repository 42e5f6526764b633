import { badRequest, type ProxyError } from '../errors.js';
import { ChunkedScanner } from './chunked-scanner.js';

/** The framings of a body a {@link BodyScanner} follows (the body-carrying kinds of both sides' framings). */
export type BodyFraming =
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  /** Responses only: the body runs until the upstream closes the connection. */
  | { readonly kind: 'close' };

/**
 * Follows one message body at a time, whatever its framing, for the request and the response
 * parser alike: finds where the body ends in the bytes read and which of them to pass on. It
 * reports ranges of the chunk it was given, so the parsers emit sub-arrays and nothing is
 * allocated per chunk; one scanner serves every body of a connection.
 */
export class BodyScanner {
  /** Start, in the chunk last scanned, of the body bytes to pass on (none when equal to `emitEnd`). */
  emitStart = 0;
  /** End (exclusive) of the body bytes to pass on. */
  emitEnd = 0;
  private kind: BodyFraming['kind'] | 'done' = 'done';
  private remaining = 0;
  private dechunk = false;
  private readonly chunked: ChunkedScanner;

  /**
   * @param maxTrailerBytes largest trailer section of a chunked body accepted.
   * @param fail builds the error thrown on malformed chunked framing (400 by default; the
   *   response parser passes one that makes a 502).
   */
  constructor(maxTrailerBytes: number, fail: (message: string) => ProxyError = badRequest) {
    this.chunked = new ChunkedScanner(maxTrailerBytes, fail);
  }

  /**
   * Starts following a body framed by `framing`. With `dechunk`, only the payload of a chunked
   * body is passed on (no size lines, extensions, CRLFs or trailers); otherwise its bytes as sent.
   */
  start(framing: BodyFraming, dechunk = false): void {
    this.kind = framing.kind;
    this.dechunk = dechunk;
    if (framing.kind === 'length') this.remaining = framing.length;
    else if (framing.kind === 'chunked') this.chunked.reset();
  }

  /** Whether the body has ended (a close-delimited one ends only at {@link finish}). */
  get done(): boolean {
    return this.kind === 'done';
  }

  /**
   * Consumes body bytes of `chunk` from `offset`; returns the offset just past them
   * (`chunk.length` when the body goes on into the next chunk, less when it ended inside this
   * one). Sets `emitStart`/`emitEnd` to the bytes to pass on: everything consumed, or when
   * de-chunking one run of payload, in which case it returns right after that run and is called
   * again from there for the rest.
   */
  scan(chunk: Buffer, offset: number): number {
    switch (this.kind) {
      case 'length': {
        const end = Math.min(chunk.length, offset + this.remaining);
        this.remaining -= end - offset;
        if (this.remaining === 0) this.kind = 'done';
        return this.consumed(offset, end);
      }
      case 'chunked': {
        if (!this.dechunk) return this.consumed(offset, this.chunkedEnd(this.chunked.scan(chunk, offset)));
        const end = this.chunkedEnd(this.chunked.scanPayload(chunk, offset));
        this.emitStart = this.chunked.payloadStart;
        this.emitEnd = this.chunked.payloadEnd;
        return end;
      }
      case 'close':
        return this.consumed(offset, chunk.length);
      case 'done':
        return this.consumed(offset, offset);
    }
  }

  /** The connection closed: returns whether that ends the body (only a close-delimited one does). */
  finish(): boolean {
    if (this.kind !== 'close') return false;
    this.kind = 'done';
    return true;
  }

  /** Notes the end of a chunked body once the scanner has seen it; returns `end`. */
  private chunkedEnd(end: number): number {
    if (this.chunked.done) this.kind = 'done';
    return end;
  }

  /** Passes on all of `[start, end)`; returns `end`. */
  private consumed(start: number, end: number): number {
    this.emitStart = start;
    this.emitEnd = end;
    return end;
  }
}
