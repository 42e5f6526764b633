import type { ProxyError } from '../errors.js';
import type { HeaderField } from './head.js';
import { isOws, TCHAR } from './syntax.js';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

/** Builds the error for a malformed head: 400 for requests, 502 for responses. */
export type HeadError = (message: string) => ProxyError;

/**
 * Parses the field lines of a head: `text` from `start` on, lines separated by CRLF, no final
 * CRLF. One pass over the text by index (no array of lines, no substring per line), strict per
 * RFC 9112: obs-fold, whitespace before a colon, a bare CR or LF, control characters in a
 * value or a name that is not a token are errors. `where` names the head in messages.
 */
export function parseFields(text: string, start: number, fail: HeadError, where: string): HeaderField[] {
  const fields: HeaderField[] = [];
  let pos = start;
  while (pos < text.length) {
    let end = text.indexOf('\r\n', pos);
    if (end < 0) end = text.length;
    fields.push(parseField(text, pos, end, fail, where));
    pos = end + 2;
  }
  return fields;
}

/** One `name: value` line, `text[pos, end)`. */
export function parseField(text: string, pos: number, end: number, fail: HeadError, where: string): HeaderField {
  const first = text.charCodeAt(pos);
  if (first === SP || first === HTAB) throw fail('obsolete line folding in header');
  let colon = pos;
  while (colon < end && TCHAR[text.charCodeAt(colon)] === 1) colon++;
  if (colon === end || text.charCodeAt(colon) !== COLON || colon === pos) throw nameError(text, pos, end, fail, where);
  // Optional whitespace around the value is not part of it (RFC 9112 §5.1).
  let valueStart = colon + 1;
  let valueEnd = end;
  while (valueStart < valueEnd && isOws(text.charCodeAt(valueStart))) valueStart++;
  while (valueEnd > valueStart && isOws(text.charCodeAt(valueEnd - 1))) valueEnd--;
  for (let i = valueStart; i < valueEnd; i++) {
    const c = text.charCodeAt(i);
    if ((c < SP && c !== HTAB) || c === 0x7f) {
      throw fail(c === LF || c === CR ? bare(c, where) : `invalid character in header ${text.slice(pos, colon)}`);
    }
  }
  return [text.slice(pos, colon), text.slice(valueStart, valueEnd)];
}

/** Why a field line has no valid `name:`. */
function nameError(text: string, pos: number, end: number, fail: HeadError, where: string): ProxyError {
  const colon = text.indexOf(':', pos);
  const nameEnd = colon < 0 || colon > end ? end : colon;
  for (let i = pos; i < nameEnd; i++) {
    const c = text.charCodeAt(i);
    if (c === LF || c === CR) return fail(bare(c, where));
  }
  if (nameEnd === end) return fail('header line without a colon');
  return fail(isOws(text.charCodeAt(colon - 1)) && colon > pos ? 'whitespace before a header colon' : 'malformed header name');
}

/** Refuses a bare CR or LF in a head's first line (its fields are checked as they are parsed). */
export function checkLineEndings(line: string, fail: HeadError, where: string): void {
  if (line.includes('\n')) throw fail(bare(LF, where));
  if (line.includes('\r')) throw fail(bare(CR, where));
}

function bare(c: number, where: string): string {
  return `bare ${c === LF ? 'LF' : 'CR'} in ${where}`;
}
