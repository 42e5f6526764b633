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
  const line = parseUsualRequestLine(requestLine) ?? parseRequestLine(requestLine);
  const headers = lineEnd < 0 ? [] : parseFields(text, lineEnd + 2, badRequest, 'request head');
  return { method: line.method, target: line.target, version: line.version, headers };
}

/** The request line, checked in full: the error names what is wrong. */
function parseRequestLine(requestLine: string): Pick<RequestHead, 'method' | 'target' | 'version'> {
  const match = REQUEST_LINE.exec(requestLine);
  if (!match) throw badRequest('malformed request line');
  const [, method, target, major, minor] = match as unknown as [string, string, string, string, string];
  if (!isToken(method)) throw badRequest('malformed method');
  if (!isRequestTarget(target)) throw badRequest('malformed request target');
  if (major !== '1' || (minor !== '0' && minor !== '1')) throw badRequest(`unsupported HTTP version ${major}.${minor}`);
  return { method, target, version: minor === '1' ? '1.1' : '1.0' };
}

/**
 * `method SP target SP HTTP/1.x` read by position when it is well-formed; undefined sends the
 * line through the full check, which names what is wrong.
 */
function parseUsualRequestLine(line: string): Pick<RequestHead, 'method' | 'target' | 'version'> | undefined {
  const versionAt = line.length - 8;
  if (versionAt < 4 || !line.startsWith('HTTP/1.', versionAt) || line.charCodeAt(versionAt - 1) !== 0x20) return undefined;
  const minor = line.charCodeAt(line.length - 1);
  if (minor !== 0x30 && minor !== 0x31) return undefined;
  const space = line.indexOf(' ');
  if (space < 1 || space >= versionAt - 2) return undefined;
  const method = line.slice(0, space);
  const target = line.slice(space + 1, versionAt - 1);
  if (!isToken(method) || !isRequestTarget(target)) return undefined; // (a second space, a control character)
  return { method, target, version: minor === 0x31 ? '1.1' : '1.0' };
}

/** One `name: value` line (a trailer field), refused with 400 when malformed. */
export function parseFieldLine(line: string): HeaderField {
  return parseField(line, 0, line.length, badRequest, 'trailer');
}
