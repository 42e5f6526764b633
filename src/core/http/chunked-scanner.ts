import { ProxyError, badRequest } from '../errors.js';
import { parseFieldLine } from './head-parser.js';

const CR = 0x0d;
const LF = 0x0a;
/** A chunk-size line (size and extensions) longer than this is refused. */
const MAX_LINE = 4096;
/** `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`, RFC 9112 §7.1.1. */
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"';
const CHUNK_EXT = new RegExp(`^(?:[ \\t]*;[ \\t]*${TOKEN}(?:[ \\t]*=[ \\t]*(?:${TOKEN}|${QUOTED}))?)*$`);

type State = 'size' | 'data' | 'data-cr' | 'data-lf' | 'trailer' | 'done';

/**
 * Follows a chunked body (RFC 9112 §7.1) without copying it: the bytes are forwarded as they
 * are, and the scanner only finds where the message ends and refuses malformed framing
 * (bad sizes or extensions, bare LF, missing CRLF after data, malformed trailers).
 */
export class ChunkedScanner {
  /** Start, in the chunk last given to `scanPayload`, of the chunk data it found (none when equal to `payloadEnd`). */
  payloadStart = 0;
  /** End (exclusive) of the chunk data `scanPayload` found. */
  payloadEnd = 0;
  private state: State = 'size';
  private line = '';
  private remaining = 0;
  private trailerBytes = 0;

  /**
   * @param maxTrailerBytes largest trailer section accepted.
   * @param fail builds the error thrown on malformed framing (400 by default; a response
   *   parser passes one that makes a 502).
   */
  constructor(
    private readonly maxTrailerBytes: number,
    private readonly fail: (message: string) => ProxyError = badRequest,
  ) {}

  /** Whether the last chunk and trailer section have been seen. */
  get done(): boolean {
    return this.state === 'done';
  }

  /** Starts over for the next chunked body (one scanner per parser, not one per message). */
  reset(): void {
    this.state = 'size';
    this.line = '';
    this.remaining = 0;
    this.trailerBytes = 0;
  }

  /**
   * Scans `chunk` from `offset`; returns the offset just past the end of the message, or
   * `chunk.length` when the message goes on into the next chunk.
   */
  scan(chunk: Buffer, offset: number): number {
    return this.run(chunk, offset, false);
  }

  /**
   * Scans `chunk` from `offset` up to the end of the next run of chunk data (payload, without
   * size lines, extensions, CRLFs or trailers), which it reports in `payloadStart`/`payloadEnd`,
   * and returns the offset just past it; called again from there, it goes on. With no data run
   * left in `chunk`, it behaves like `scan` (and the range is empty): ranges, not callbacks, so
   * that de-chunking allocates nothing per chunk.
   */
  scanPayload(chunk: Buffer, offset: number): number {
    this.payloadStart = this.payloadEnd = offset;
    return this.run(chunk, offset, true);
  }

  /** `scan`, stopping after the first non-empty data run when `stopAtData`. */
  private run(chunk: Buffer, offset: number, stopAtData: boolean): number {
    let i = offset;
    while (i < chunk.length && this.state !== 'done') {
      switch (this.state) {
        case 'data': {
          const take = Math.min(this.remaining, chunk.length - i);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = 'data-cr';
          if (stopAtData && take > 0) {
            this.payloadStart = i - take;
            this.payloadEnd = i;
            return i;
          }
          break;
        }
        case 'data-cr':
          if (chunk[i++] !== CR) throw this.fail('chunk data not followed by CRLF');
          this.state = 'data-lf';
          break;
        case 'data-lf':
          if (chunk[i++] !== LF) throw this.fail('chunk data not followed by CRLF');
          this.state = 'size';
          break;
        default:
          i = this.scanLine(chunk, i);
      }
    }
    return i;
  }

  /** Collects one CRLF-terminated line (size line or trailer line) and acts on it. */
  private scanLine(chunk: Buffer, start: number): number {
    let i = start;
    while (i < chunk.length) {
      const c = chunk[i++] as number;
      if (c === LF) {
        if (!this.line.endsWith('\r')) throw this.fail('bare LF in chunked body');
        const line = this.line.slice(0, -1);
        this.line = '';
        this.endLine(line);
        return i;
      }
      if (this.line.endsWith('\r')) throw this.fail('bare CR in chunked body');
      this.line += String.fromCharCode(c);
      if (this.line.length > MAX_LINE) throw this.fail('chunk line too long');
      if (this.state === 'trailer' && ++this.trailerBytes > this.maxTrailerBytes) {
        throw this.fail('trailer section too large');
      }
    }
    return i;
  }

  private checkTrailer(line: string): void {
    try {
      parseFieldLine(line);
    } catch (error) {
      if (this.fail !== badRequest && error instanceof ProxyError) throw this.fail(error.message);
      throw error;
    }
  }

  private endLine(line: string): void {
    if (this.state === 'trailer') {
      if (line === '') this.state = 'done';
      else this.checkTrailer(line);
      return;
    }
    const match = /^([0-9A-Fa-f]+)(.*)$/.exec(line);
    if (!match) throw this.fail('malformed chunk size');
    const [, digits, extensions] = match as unknown as [string, string, string];
    if (!CHUNK_EXT.test(extensions)) throw this.fail('malformed chunk extension');
    const size = parseInt(digits, 16);
    if (digits.length > 16 || !Number.isSafeInteger(size)) throw this.fail('chunk size too large');
    if (size === 0) {
      this.state = 'trailer';
    } else {
      this.remaining = size;
      this.state = 'data';
    }
  }
}
