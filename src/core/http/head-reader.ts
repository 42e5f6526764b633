import type { ProxyError } from '../errors.js';

const HEAD_END = Buffer.from('\r\n\r\n');
const CR = 0x0d;
const LF = 0x0a;

/**
 * Collects the bytes of one message head across chunks and finds where it ends (CRLF CRLF),
 * for requests and responses alike: empty lines before it are skipped (RFC 9112 §2.2), a bare LF
 * or a head over the limit is an error at once (never a wait for a CRLF CRLF that may not come).
 */
export class HeadReader {
  private pending: Buffer | undefined;
  private scanned = 0;

  constructor(
    private readonly maxBytes: number,
    /** Builds the error for a malformed head (400 for requests, 502 for responses). */
    private readonly malformed: (message: string) => ProxyError,
    /** Builds the error for a head over `maxBytes`. */
    private readonly tooLarge: () => ProxyError,
  ) {}

  /** Forgets any partial head (the reader is used again for another message). */
  reset(): void {
    this.pending = undefined;
    this.scanned = 0;
  }

  /** True while part of a head has arrived but not all of it. */
  get started(): boolean {
    return this.pending !== undefined;
  }

  /**
   * Reads `chunk` from `offset`. Returns the head's text (latin1, without the final CRLF CRLF)
   * and the offset in `chunk` just past the head, or undefined when the head goes on into the
   * next chunk (all of `chunk` was taken).
   */
  read(chunk: Buffer, offset: number): { text: string; next: number } | undefined {
    const input = offset === 0 ? chunk : chunk.subarray(offset);
    const buffer = this.pending ? Buffer.concat([this.pending, input]) : input;
    const previous = this.pending?.length ?? 0;
    let start = 0;
    while (buffer[start] === CR && buffer[start + 1] === LF) start += 2;
    const end = buffer.indexOf(HEAD_END, Math.max(start, this.scanned - 3));
    // Only the head's first maxBytes bytes are looked at: a bare LF among them is the error, else
    // the size is, whatever chunks the bytes came in (which error a client gets never depends on
    // how much of the head one read happened to hold).
    const limit = start + this.maxBytes;
    if (end < 0) {
      // A bare LF fails at once, not after a wait for a CRLF CRLF that may never come. A complete
      // head within the limit needs no scan here: its parser refuses a bare CR or LF on every line.
      this.refuseBareLf(buffer, Math.max(start, this.scanned), limit);
      if (buffer.length - start > this.maxBytes) throw this.tooLarge();
      this.pending = start === buffer.length ? undefined : buffer.subarray(start);
      this.scanned = this.pending ? this.pending.length : 0;
      return undefined;
    }
    if (end + HEAD_END.length - start > this.maxBytes) {
      this.refuseBareLf(buffer, start, limit);
      throw this.tooLarge();
    }
    this.pending = undefined;
    this.scanned = 0;
    return { text: buffer.toString('latin1', start, end), next: offset + (end + HEAD_END.length - previous) };
  }

  /** Throws on a LF not preceded by CR in `buffer[from, limit)`. */
  private refuseBareLf(buffer: Buffer, from: number, limit: number): void {
    for (let lf = buffer.indexOf(LF, from); lf >= 0 && lf < limit; lf = buffer.indexOf(LF, lf + 1)) {
      if (buffer[lf - 1] !== CR) throw this.malformed('bare LF in head');
    }
  }
}

/**
 * The length a set of Content-Length values states, by one rule for requests and responses: all
 * values (comma lists included) identical and all digits, else the message is ambiguous.
 */
export function contentLength(values: readonly string[], fail: (message: string) => ProxyError): number {
  if (values.length === 1 && isDigits(values[0]!)) return Number(values[0]); // the usual case
  const distinct = new Set(values.flatMap((value) => value.split(',')).map((value) => value.trim()));
  if (distinct.size !== 1) throw fail('conflicting Content-Length values');
  const [value] = distinct as unknown as [string];
  if (!isDigits(value)) throw fail('invalid Content-Length');
  return Number(value);
}

/** 1 to 15 decimal digits (so the number is exact as a double). */
function isDigits(value: string): boolean {
  if (value.length === 0 || value.length > 15) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}
