import type { AccessRecord } from './access-log-record.js';

/** The JSON keys of a record, the text between its values, and its literals, as bytes. */
const ascii = (text: string): Buffer => Buffer.from(text, 'latin1');
const TIME = ascii('{"time":"');
const CLIENT = ascii('","client":');
const USER = ascii(',"user":');
const METHOD = ascii(',"method":');
const TARGET = ascii(',"target":');
const STATUS = ascii(',"status":');
const BYTES_IN = ascii(',"bytesIn":');
const BYTES_OUT = ascii(',"bytesOut":');
const CONNECT_MS = ascii(',"connectMs":');
const FIRST_BYTE_MS = ascii(',"firstByteMs":');
const TOTAL_MS = ascii(',"totalMs":');
const REUSED = ascii(',"reused":');
const ANSWERED_BY = ascii(',"answeredBy":');
const ERROR = ascii(',"error":');
const FAULTS = ascii(',"faults":[');
const END = ascii('}\n');
const NULL = ascii('null');
const TRUE = ascii('true');
const FALSE = ascii('false');

/** Bytes the keys, numbers and literals of a record take at most (a number prints in at most 25 characters). */
const FIXED_BYTES = 512;

/**
 * Access-log lines collected as bytes until they are written out together. JSON records go
 * straight into the buffer, the same text `JSON.stringify(record) + '\n'` gives, with no string
 * built per record: a line put together from template strings left about 1 KiB of garbage per
 * request (the pieces, the numbers printed, the flattened line, the joined batch, its encoding).
 */
export class LineBuffer {
  private buffer: Buffer;
  private length = 0;

  constructor(
    /** Bytes a fresh buffer has room for (a long line grows it). */
    private readonly capacity: number,
  ) {
    this.buffer = Buffer.allocUnsafeSlow(capacity);
  }

  /** Bytes collected so far. */
  get size(): number {
    return this.length;
  }

  /** Takes what was written (undefined when nothing was); the next lines go to a new buffer, as the destination keeps this one. */
  take(): Buffer | undefined {
    if (this.length === 0) return undefined;
    const bytes = this.buffer.subarray(0, this.length);
    this.buffer = Buffer.allocUnsafeSlow(this.capacity);
    this.length = 0;
    return bytes;
  }

  /** Appends a line of text as UTF-8 (the Common and Combined formats). */
  text(line: string): void {
    this.reserve(line.length * 3);
    this.length += this.buffer.write(line, this.length, 'utf8');
  }

  /** Appends `record` as one JSON line. */
  record(record: AccessRecord): void {
    // JSON.stringify writes at most 6 bytes per UTF-16 unit (`\u001f`), UTF-8 at most 3.
    const { user, method, target, answeredBy, error, faults } = record;
    let strings =
      record.time.length +
      record.client.length +
      (user?.length ?? 0) +
      (method?.length ?? 0) +
      (target?.length ?? 0) +
      (answeredBy?.length ?? 0) +
      (error?.length ?? 0);
    // Each name: its text, two quotes and a comma.
    if (faults) for (const name of faults) strings += name.length + 3;
    this.reserve(FIXED_BYTES + 6 * strings);
    this.copy(TIME);
    this.ascii(record.time); // isoTime's: digits and `-:.TZ`, nothing to escape
    this.copy(CLIENT);
    this.string(record.client);
    this.copy(USER);
    this.string(user);
    this.copy(METHOD);
    this.string(method);
    this.copy(TARGET);
    this.string(target);
    this.copy(STATUS);
    this.number(record.status);
    this.copy(BYTES_IN);
    this.number(record.bytesIn);
    this.copy(BYTES_OUT);
    this.number(record.bytesOut);
    this.copy(CONNECT_MS);
    this.number(record.connectMs);
    this.copy(FIRST_BYTE_MS);
    this.number(record.firstByteMs);
    this.copy(TOTAL_MS);
    this.number(record.totalMs);
    this.copy(REUSED);
    this.copy(record.reused ? TRUE : FALSE);
    if (answeredBy !== undefined) {
      this.copy(ANSWERED_BY);
      this.string(answeredBy);
    }
    if (error !== undefined) {
      this.copy(ERROR);
      this.string(error);
    }
    if (faults !== undefined) {
      this.copy(FAULTS);
      for (let i = 0; i < faults.length; i++) {
        if (i > 0) this.buffer[this.length++] = 0x2c;
        this.string(faults[i]!);
      }
      this.buffer[this.length++] = 0x5d;
    }
    this.copy(END);
  }

  /** Makes room for `bytes` more, in a bigger buffer if need be (a very long target). */
  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.capacity, 2 * (this.length + bytes)));
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }

  private copy(bytes: Buffer): void {
    const buffer = this.buffer;
    let at = this.length;
    for (let i = 0; i < bytes.length; i++) buffer[at++] = bytes[i]!;
    this.length = at;
  }

  /** Text known to be printable ASCII without `"` or `\`. */
  private ascii(text: string): void {
    this.length += this.buffer.write(text, this.length, 'latin1');
  }

  /** A string (or null) as JSON: copied as is when it is printable ASCII without `"` or `\`. */
  private string(text: string | null): void {
    if (text === null) return this.copy(NULL);
    const buffer = this.buffer;
    let at = this.length;
    buffer[at++] = 0x22;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) {
        // Escapes, non-ASCII, lone surrogates: as JSON.stringify writes them, in UTF-8.
        this.length += buffer.write(JSON.stringify(text), this.length, 'utf8');
        return;
      }
      buffer[at++] = code;
    }
    buffer[at++] = 0x22;
    this.length = at;
  }

  /**
   * A number (or null) as JSON: integers and one-decimal durations digit by digit (printing a
   * double finds its shortest form, several times dearer), other finite ones with `String`.
   */
  private number(value: number | null): void {
    if (value === null) return this.copy(NULL);
    if (value >= 0 && value < 1e14) {
      const tenths = Math.round(value * 10);
      if (tenths / 10 === value) {
        const whole = Math.floor(value);
        this.digits(whole);
        const fraction = tenths - whole * 10;
        if (fraction !== 0) {
          this.buffer[this.length++] = 0x2e;
          this.buffer[this.length++] = 0x30 + fraction;
        }
        return;
      }
    }
    // JSON has no NaN or Infinity: JSON.stringify writes null for them.
    if (!Number.isFinite(value)) return this.copy(NULL);
    this.length += this.buffer.write(String(value), this.length, 'latin1');
  }

  /** A non-negative integer's decimal digits. */
  private digits(value: number): void {
    let end = this.length + 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) end++;
    this.length = end;
    const buffer = this.buffer;
    let rest = value;
    do {
      const next = Math.floor(rest / 10);
      buffer[--end] = 0x30 + rest - next * 10;
      rest = next;
    } while (rest > 0);
  }
}
