import { badRequest } from '../errors.js';
import { checkLineEndings, parseField, parseFields } from './fields.js';
import type { HeaderField, RequestHead } from './head.js';
import { isRequestTarget, isToken } from './syntax.js';

const REQUEST_LINE = /^([^ ]+) ([^ ]+) HTTP\/(\d)\.(\d)$/;

/**
 * Parses the text of a request head (everything before the empty line, CRLFs included, no final
 * CRLF CRLF). Strict per RFC 9112: bare CR or LF, obs-fold, whitespace before a colon, control
 * characters in values, or a malformed request line are errors (400), never guesses.
 */
export function parseRequestHead(text: string): RequestHead {
  const lineEnd = text.indexOf('\r\n');
  const requestLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  checkLineEndings(requestLine, badRequest, 'request head');
  const match = REQUEST_LINE.exec(requestLine);
  if (!match) throw badRequest('malformed request line');
  const [, method, target, major, minor] = match as unknown as [string, string, string, string, string];
  if (!isToken(method)) throw badRequest('malformed method');
  if (!isRequestTarget(target)) throw badRequest('malformed request target');
  if (major !== '1' || (minor !== '0' && minor !== '1')) throw badRequest(`unsupported HTTP version ${major}.${minor}`);
  const headers = lineEnd < 0 ? [] : parseFields(text, lineEnd + 2, badRequest, 'request head');
  return { method, target, version: minor === '1' ? '1.1' : '1.0', headers };
}

/** One `name: value` line (a trailer field), refused with 400 when malformed. */
export function parseFieldLine(line: string): HeaderField {
  return parseField(line, 0, line.length, badRequest, 'trailer');
}
