// Runs a parser over an input delivered in pieces and writes down what it reported, in a form
// that can be compared between two deliveries of the same bytes. Checks, on every run, what
// must hold whatever the input: only ProxyErrors are thrown, data events are non-empty views of
// the input, a parser never emits more events than the bytes can justify (no runaway loop).
import type { Exchange } from '../../src/core/exchange.js';
import { ProxyError } from '../../src/core/errors.js';
import type { ProxyEvent } from '../../src/core/events.js';
import { BodyScanner } from '../../src/core/http/body-scanner.js';
import { RequestParser } from '../../src/core/http/request-parser.js';
import { ResponseParser, type ResponseParserEvent } from '../../src/core/http/response-parser.js';
import type { ResponseOptions } from './arbitraries.js';

/** What a parser reported, normalized: adjacent data merged (latin1), heads as JSON. */
export type Token = { kind: 'head'; json: string } | { kind: 'data'; bytes: string } | { kind: 'end' };

/** The result of one parse. */
export interface Outcome {
  tokens: Token[];
  /** The ProxyError thrown, if any (anything else propagates and fails the property). */
  error?: ProxyError;
  /** Response parser and scanner: the sum of what `push`/`scan` returned. */
  consumed: number;
  /** Scanner: whether the last chunk and trailers were seen. */
  done?: boolean;
}

/** An invariant of the parser's API was broken (not a ProxyError: it fails the property). */
export class InvariantError extends Error {}

/** Collects tokens, merging data, and enforces the per-event invariants. */
class Recorder {
  readonly tokens: Token[] = [];
  private events = 0;
  private readonly budget: number;

  constructor(private readonly input: Buffer) {
    this.budget = 4 * input.length + 16;
  }

  head(json: string): void {
    this.count();
    this.tokens.push({ kind: 'head', json });
  }

  end(): void {
    this.count();
    this.tokens.push({ kind: 'end' });
  }

  data(chunk: Buffer): void {
    this.count();
    if (chunk.length === 0) throw new InvariantError('empty data event');
    const start = chunk.byteOffset - this.input.byteOffset;
    if (chunk.buffer !== this.input.buffer || start < 0 || start + chunk.length > this.input.length) {
      throw new InvariantError('data event is not a view of the input');
    }
    const bytes = chunk.toString('latin1');
    const last = this.tokens[this.tokens.length - 1];
    if (last?.kind === 'data') last.bytes += bytes;
    else this.tokens.push({ kind: 'data', bytes });
  }

  private count(): void {
    if (++this.events > this.budget) throw new InvariantError(`more than ${this.budget} events for ${this.input.length} bytes: a runaway loop`);
  }
}

/** Runs `body`; a ProxyError is the outcome's error, anything else propagates. */
function guard(body: () => void): ProxyError | undefined {
  try {
    body();
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  return undefined;
}

/** How the request harness answers upgrade requests and CONNECTs (established or refused). */
export interface UpgradePolicy {
  /** Whether the n-th exchange's upgrade or CONNECT switched to a tunnel (cyclic by exchange id). */
  decisions: readonly boolean[];
  /** Decide only after every piece was pushed (bytes pile up in the parser), not after each push. */
  late: boolean;
}

/** Parses a client's bytes with a RequestParser. */
export function parseRequests(input: Buffer, pieces: readonly Buffer[], maxHeaderBytes: number, upgrades: UpgradePolicy): Outcome {
  const recorder = new Recorder(input);
  const waiting: Exchange[] = [];
  const parser = new RequestParser({ maxHeaderBytes, onUpgradeWait: (exchange) => waiting.push(exchange) }, (event: ProxyEvent) => {
    if (event.kind === 'data') recorder.data(event.chunk);
    else if (event.kind === 'request-head') recorder.head(JSON.stringify(event.head));
    else recorder.end();
  });
  const decide = () => {
    for (let exchange = waiting.shift(); exchange; exchange = waiting.shift()) {
      if (!parser.awaitingUpgrade) throw new InvariantError('onUpgradeWait called but the parser is not waiting');
      const { decisions } = upgrades;
      parser.resolveUpgrade(decisions.length > 0 && decisions[(exchange.id - 1) % decisions.length]!);
    }
  };
  const error = guard(() => {
    for (const piece of pieces) {
      parser.push(piece);
      if (!upgrades.late) decide();
    }
    decide();
  });
  return { tokens: recorder.tokens, error, consumed: input.length };
}

/** Parses an upstream's bytes with a ResponseParser (then EOF when `eof`). */
export function parseResponse(input: Buffer, pieces: readonly Buffer[], options: ResponseOptions, eof: boolean): Outcome {
  const recorder = new Recorder(input);
  const parser = new ResponseParser(options, (event: ResponseParserEvent) => {
    if (event.kind === 'data') recorder.data(event.chunk);
    else if (event.kind === 'response-head') recorder.head(JSON.stringify({ head: event.head, framing: event.framing.kind, interim: event.interim }));
    else recorder.end();
  });
  let consumed = 0;
  const error = guard(() => {
    for (const piece of pieces) {
      const wasDone = parser.done;
      const took = parser.push(piece);
      if (!Number.isInteger(took) || took < 0 || took > piece.length) throw new InvariantError(`push returned ${took} for ${piece.length} bytes`);
      if (took < piece.length && !parser.done) throw new InvariantError('push left bytes unconsumed before the response was done');
      if (wasDone && took !== 0 && took !== piece.length) throw new InvariantError('a done parser consumed part of a chunk');
      if (piece.length > 0 && !parser.started) throw new InvariantError('started is false after a byte');
      consumed += took;
    }
    if (eof) parser.end();
  });
  return { tokens: recorder.tokens, error, consumed };
}

/**
 * Scans a chunked body with a de-chunking BodyScanner, collecting the payload ranges, and checks
 * that a BodyScanner passing the bytes as sent (the request parser's) ends where it does, with the
 * same error. With `offsets`, each piece is scanned as a tail of a longer view
 * (`scan(view, offset)`), as a parser calls it.
 */
export function scanChunked(
  input: Buffer,
  pieces: readonly Buffer[],
  maxTrailerBytes: number,
  fail: (message: string) => ProxyError,
  offsets: boolean,
): Outcome {
  const recorder = new Recorder(input);
  const scanner = new BodyScanner(maxTrailerBytes, fail);
  scanner.start({ kind: 'chunked' }, true);
  const raw = new BodyScanner(maxTrailerBytes, fail);
  raw.start({ kind: 'chunked' });
  let consumed = 0;
  let position = 0; // where the current piece starts in input
  const error = guard(() => {
    for (const piece of pieces) {
      const chunk = offsets ? input.subarray(0, position + piece.length) : piece;
      const from = offsets ? position : 0;
      let rawEnd: number | ProxyError;
      try {
        rawEnd = raw.scan(chunk, from);
        if (raw.emitStart !== from || raw.emitEnd !== rawEnd)
          throw new InvariantError(`raw scan reported [${raw.emitStart}, ${raw.emitEnd}) for [${from}, ${rawEnd})`);
      } catch (error) {
        if (!(error instanceof ProxyError)) throw error;
        rawEnd = error;
      }
      let at = from;
      try {
        // Each call consumes at least one byte until the body is done: at most one per byte.
        for (let calls = 0; at < chunk.length && !scanner.done; calls++) {
          if (calls >= chunk.length - from) throw new InvariantError('scan makes no progress');
          const next = scanner.scan(chunk, at);
          if (!Number.isInteger(next) || next <= at || next > chunk.length) throw new InvariantError(`scan returned ${next} for [${at}, ${chunk.length})`);
          const { emitStart: start, emitEnd: stop } = scanner;
          if (stop !== start) {
            if (start < at || stop < start || stop > next) throw new InvariantError(`payload range [${start}, ${stop}) out of order or bounds`);
            recorder.data(chunk.subarray(start, stop));
          }
          if (next < chunk.length && !scanner.done && stop !== next) throw new InvariantError('scan stopped early, neither after a payload run nor done');
          at = next;
        }
      } catch (error) {
        if (error instanceof ProxyError && !(rawEnd instanceof ProxyError && rawEnd.message === error.message)) {
          throw new InvariantError(
            `de-chunking refused (${error.message}), passing bytes as sent: ${rawEnd instanceof ProxyError ? rawEnd.message : 'accepted'}`,
          );
        }
        throw error;
      }
      if (rawEnd instanceof ProxyError) throw new InvariantError(`passing bytes as sent refused (${rawEnd.message}), de-chunking accepted`);
      if (rawEnd !== at || raw.done !== scanner.done)
        throw new InvariantError(`passing bytes as sent ends at ${String(rawEnd)} (done ${raw.done}), de-chunking at ${at} (done ${scanner.done})`);
      consumed += at - from;
      position += piece.length;
    }
  });
  return { tokens: recorder.tokens, error, consumed, done: scanner.done };
}

/** Latin1 bytes of a string (one byte per character), as a fresh buffer of its own. */
export function bytes(text: string): Buffer {
  const buffer = Buffer.allocUnsafeSlow(text.length);
  buffer.write(text, 'latin1');
  return buffer;
}

/** Tokens other than data. */
export const markers = (tokens: readonly Token[]) => tokens.filter((t) => t.kind !== 'data');

/**
 * Why two outcomes of the same bytes differ, or undefined when they agree. Without an error,
 * everything must be equal. With one, the codes must be equal, every head and end must be, and
 * the data before the last of them; after it, one side's data may stop short of the other's
 * (a parser may emit the data it read before the error, or not): one must be a prefix of the other.
 */
export function difference(a: Outcome, b: Outcome, strictData: boolean): string | undefined {
  if (a.error?.code !== b.error?.code) return `error ${a.error?.code ?? 'none'} (${a.error?.message}) vs ${b.error?.code ?? 'none'} (${b.error?.message})`;
  if (!a.error || strictData) {
    if (JSON.stringify(a.tokens) !== JSON.stringify(b.tokens)) return 'different events';
    if (!a.error && a.consumed !== b.consumed) return `consumed ${a.consumed} vs ${b.consumed}`;
    if (a.done !== b.done) return `done ${a.done} vs ${b.done}`;
    return undefined;
  }
  const ma = markers(a.tokens);
  const mb = markers(b.tokens);
  if (JSON.stringify(ma) !== JSON.stringify(mb)) return 'different heads or ends';
  const segments = (tokens: readonly Token[]) => {
    const result = [''];
    for (const t of tokens) {
      if (t.kind === 'data') result[result.length - 1] += t.bytes;
      else result.push('');
    }
    return result;
  };
  const sa = segments(a.tokens);
  const sb = segments(b.tokens);
  for (let i = 0; i < sa.length - 1; i++) if (sa[i] !== sb[i]) return `different data before event ${i}`;
  const [x, y] = [sa[sa.length - 1]!, sb[sb.length - 1]!];
  if (!x.startsWith(y) && !y.startsWith(x)) return 'data after the last head or end is not a prefix of the other';
  return undefined;
}
