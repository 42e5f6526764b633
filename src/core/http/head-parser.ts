import { badRequest } from '../errors.js';
import type { HeaderField, RequestHead } from './head.js';
import { isFieldValue, isRequestTarget, isToken } from './syntax.js';

const REQUEST_LINE = /^([^ ]+) ([^ ]+) HTTP\/(\d)\.(\d)$/;

/**
 * Parses the text of a request head (everything before the empty line, CRLFs included, no final
 * CRLF CRLF). Strict per RFC 9112: bare CR or LF, obs-fold, whitespace before a colon, control
 * characters in values, or a malformed request line are errors (400), never guesses.
 */
export function parseRequestHead(text: string): RequestHead {
  const lines = splitLines(text);
  const requestLine = lines[0] ?? '';
  const match = REQUEST_LINE.exec(requestLine);
  if (!match) throw badRequest('malformed request line');
  const [, method, target, major, minor] = match as unknown as [string, string, string, string, string];
  if (!isToken(method)) throw badRequest('malformed method');
  if (!isRequestTarget(target)) throw badRequest('malformed request target');
  if (major !== '1' || (minor !== '0' && minor !== '1')) throw badRequest(`unsupported HTTP version ${major}.${minor}`);
  const headers: HeaderField[] = [];
  for (let i = 1; i < lines.length; i++) headers.push(parseFieldLine(lines[i] as string));
  return { method, target, version: minor === '1' ? '1.1' : '1.0', headers };
}

/** Splits on CRLF, refusing bare CR and bare LF (RFC 9112 §2.2: no lenient line endings here). */
function splitLines(text: string): string[] {
  const lines = text.split('\r\n');
  for (const line of lines) {
    if (line.includes('\n')) throw badRequest('bare LF in request head');
    if (line.includes('\r')) throw badRequest('bare CR in request head');
  }
  return lines;
}

/** SP or HTAB. */
function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** One `name: value` line. */
export function parseFieldLine(line: string): HeaderField {
  if (line.startsWith(' ') || line.startsWith('\t')) throw badRequest('obsolete line folding in header');
  const colon = line.indexOf(':');
  if (colon < 0) throw badRequest('header line without a colon');
  const name = line.slice(0, colon);
  if (!isToken(name)) {
    throw badRequest(/[ \t]$/.test(name) ? 'whitespace before a header colon' : 'malformed header name');
  }
  // Optional whitespace around the value is not part of it (RFC 9112 §5.1).
  let start = colon + 1;
  let end = line.length;
  while (start < end && isOws(line.charCodeAt(start))) start++;
  while (end > start && isOws(line.charCodeAt(end - 1))) end--;
  const value = line.slice(start, end);
  if (!isFieldValue(value)) throw badRequest(`invalid character in header ${name}`);
  return [name, value];
}
