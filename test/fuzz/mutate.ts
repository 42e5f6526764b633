// Byte-level mutations of messages, byte soups, and the cut points that split an input into the
// chunks a socket might deliver.
import fc from 'fast-check';
import { anyByte } from './arbitraries.js';

/** Fragments that change how HTTP is read when inserted anywhere. */
const FRAGMENTS = [
  '\r\n',
  '\r\n\r\n',
  '\n',
  '\r',
  '\x00',
  ' ',
  '\t',
  ':',
  ' :',
  ',',
  ';',
  '=',
  '"',
  '0',
  'ffffffffffffffffff',
  '99999999999999999999',
  '-1',
  '\x7f',
  '\x80',
  '\xff',
  '\xe9',
  'Transfer-Encoding: chunked\r\n',
  'Transfer-Encoding: gzip\r\n',
  'Content-Length: 5\r\n',
  'Content-Length: 0\r\n',
  'Content-Length: 1000000000000000\r\n',
  'Host: h\r\n',
  'Connection: close\r\n',
  'Connection: upgrade\r\nUpgrade: x\r\n',
  '\r\n ',
  '\r\n\t',
  'HTTP/1.1 200 OK\r\n',
  'HTTP/1.1 100 Continue\r\n\r\n',
  'HTTP/1.1 101 Switching Protocols\r\n',
  'GET http://a/ HTTP/1.1\r\n',
  'CONNECT a:443 HTTP/1.1\r\n',
  '0\r\n\r\n',
  '5\r\nhello\r\n',
  ';ext="\\"',
  'chunked',
  'gzip, ',
];

export const fragment = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...FRAGMENTS) }, { weight: 2, arbitrary: anyByte });

/** One edit of a latin1 string; positions are taken modulo the length when applied. */
export type Mutation =
  | { op: 'insert'; at: number; text: string }
  | { op: 'delete'; at: number; count: number }
  | { op: 'replace'; at: number; text: string }
  /** Writes the line ending at the `at`-th CRLF twice (duplicate header, duplicate start line). */
  | { op: 'dup-line'; at: number }
  /** Turns the `at`-th CRLF into a bare LF or a bare CR. */
  | { op: 'bare'; at: number; keep: '\n' | '\r' };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fragment }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), text: anyByte }),
  fc.record({ op: fc.constant('dup-line' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('bare' as const), at: fc.nat(), keep: fc.constantFrom('\n' as const, '\r' as const) }),
);

/** Positions of every CRLF in `text`. */
function crlfs(text: string): number[] {
  const found: number[] = [];
  for (let i = text.indexOf('\r\n'); i >= 0; i = text.indexOf('\r\n', i + 1)) found.push(i);
  return found;
}

/** Applies the mutations in order. */
export function mutate(text: string, mutations: readonly Mutation[]): string {
  let result = text;
  for (const m of mutations) {
    switch (m.op) {
      case 'insert': {
        const at = m.at % (result.length + 1);
        result = result.slice(0, at) + m.text + result.slice(at);
        break;
      }
      case 'delete':
      case 'replace': {
        if (result.length === 0) break;
        const at = m.at % result.length;
        result = result.slice(0, at) + (m.op === 'replace' ? m.text : '') + result.slice(at + (m.op === 'replace' ? 1 : m.count));
        break;
      }
      case 'dup-line':
      case 'bare': {
        const ends = crlfs(result);
        if (ends.length === 0) break;
        const end = ends[m.at % ends.length]!;
        if (m.op === 'bare') {
          result = result.slice(0, end) + m.keep + result.slice(end + 2);
        } else {
          const start = result.lastIndexOf('\r\n', end - 1) + 2; // 1 when none: the line starts at 0
          const from = start === 1 ? 0 : start;
          result = result.slice(0, end + 2) + result.slice(from, end + 2) + result.slice(end + 2);
        }
      }
    }
  }
  return result;
}

/** Up to six mutations; none at all a quarter of the time. */
export const mutations = fc.oneof({ weight: 1, arbitrary: fc.constant([]) }, { weight: 3, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 6 }) });

/** A byte soup of HTTP-looking fragments and random bytes. */
export const soup = fc.array(fragment, { maxLength: 30 }).map((parts) => parts.join(''));

/** Cut points of a split (taken modulo the input length when applied). */
export const cuts = fc.array(fc.nat(), { maxLength: 8 });

/** Splits `input` at the given cut points into sub-arrays of it (no copies), empty pieces included. */
export function split(input: Buffer, at: readonly number[]): Buffer[] {
  const points = at.map((p) => p % (input.length + 1)).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    pieces.push(input.subarray(start, point));
    start = point;
  }
  pieces.push(input.subarray(start));
  return pieces;
}

/** Splits `input` into one-byte pieces. */
export function bytewise(input: Buffer): Buffer[] {
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i++) pieces.push(input.subarray(i, i + 1));
  return pieces;
}
