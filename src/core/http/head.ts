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
