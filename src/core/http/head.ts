import { isOws } from './syntax.js';

/** A header field as it arrived: name case and order are kept. */
export type HeaderField = [name: string, value: string];

/** A parsed HTTP/1.x request head. Plugins may change it before it is serialized upstream. */
export interface RequestHead {
  /** Request method, e.g. `GET` or `CONNECT` (case-sensitive, as sent). */
  method: string;
  /** Request target as sent: absolute-form, authority-form, origin-form or `*`. */
  target: string;
  /** Minor HTTP version: `1.1` or `1.0`. */
  version: '1.0' | '1.1';
  /** Header fields in arrival order. */
  headers: HeaderField[];
}

/** Whether a field name is `lower` (already lower-case), compared ASCII case-insensitively. */
export function isField(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  // ASCII case folding by hand: header names are tokens, and this runs for every field of every
  // head several times over, where toLowerCase would allocate a string each time.
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** First value of a header (name compared case-insensitively), or undefined. */
export function getHeader(headers: readonly HeaderField[], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of headers) if (isField(key, lower)) return value;
  return undefined;
}

/** The value of a header sent exactly once; undefined when it is absent or repeated. */
export function getSoleHeader(headers: readonly HeaderField[], name: string): string | undefined {
  const lower = name.toLowerCase();
  let sole: string | undefined;
  let found = false;
  for (const [key, value] of headers) {
    if (!isField(key, lower)) continue;
    if (found) return undefined;
    found = true;
    sole = value;
  }
  return sole;
}

/** Every value of a header, in order. */
export function getHeaderValues(headers: readonly HeaderField[], name: string): string[] {
  const lower = name.toLowerCase();
  const values: string[] = [];
  for (const [key, value] of headers) if (isField(key, lower)) values.push(value);
  return values;
}

/** Comma-separated tokens of every value of a header, lower-cased (e.g. Connection options). */
export function getHeaderTokens(headers: readonly HeaderField[], name: string): readonly string[] {
  const lower = name.toLowerCase();
  let tokens: string[] | undefined;
  for (const [key, value] of headers) {
    if (!isField(key, lower)) continue;
    if (!value.includes(',')) {
      const token = value.trim().toLowerCase(); // one token, the usual case: no split array
      if (token !== '') (tokens ??= []).push(token);
      continue;
    }
    for (const part of value.split(',')) {
      const token = part.trim().toLowerCase();
      if (token !== '') (tokens ??= []).push(token);
    }
  }
  return tokens ?? NO_TOKENS; // most heads have no Connection field: no array for them
}

const NO_TOKENS: readonly string[] = Object.freeze([]);

/**
 * Whether any `name` field lists `token` (already lower-case) among its comma-separated tokens,
 * ASCII case-insensitively, optional whitespace around each ignored. Allocates nothing: it runs
 * for the Connection field of every response, several times, where {@link getHeaderTokens}
 * would build strings and an array each time.
 */
export function hasHeaderToken(headers: readonly HeaderField[], name: string, token: string): boolean {
  return someListElement(headers, name, spanIsToken, token);
}

/**
 * Whether `test` holds for any comma-separated element of any `name` field, each given as a span
 * of the field's value (`value[start, end)`, whitespace around it included) so that nothing is
 * allocated; `arg` is passed through to `test`.
 */
export function someListElement<A>(
  headers: readonly HeaderField[],
  name: string,
  test: (value: string, start: number, end: number, arg: A) => boolean,
  arg: A,
): boolean {
  for (let i = 0; i < headers.length; i++) {
    const field = headers[i]!;
    if (!isField(field[0], name)) continue;
    const value = field[1];
    let start = 0;
    while (start <= value.length) {
      let end = value.indexOf(',', start);
      if (end < 0) end = value.length;
      if (test(value, start, end, arg)) return true;
      start = end + 1;
    }
  }
  return false;
}

/** Whether `value[start, end)`, without the spaces and tabs around it, is `token` ASCII case-insensitively. */
export function spanIsToken(value: string, start: number, end: number, token: string): boolean {
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  if (end - start !== token.length) return false;
  for (let i = 0; i < token.length; i++) {
    let c = value.charCodeAt(start + i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== token.charCodeAt(i)) return false;
  }
  return true;
}

/** Serializes a request head to the bytes sent upstream. */
export function serializeRequestHead(head: RequestHead): Buffer {
  let text = `${head.method} ${head.target} HTTP/${head.version}\r\n`;
  for (const [name, value] of head.headers) text += `${name}: ${value}\r\n`;
  return Buffer.from(text + '\r\n', 'latin1');
}

/** The byte length {@link serializeRequestHead} would produce, without building it. */
export function requestHeadLength(head: RequestHead): number {
  let length = head.method.length + head.target.length + 14; // ' ' + ' HTTP/1.x\r\n' + final CRLF
  for (const [name, value] of head.headers) length += name.length + value.length + 4;
  return length;
}
