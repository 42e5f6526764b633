import { ProxyError } from '../errors.js';
import { contentLength } from './head-reader.js';
import { checkLineEndings, parseFields } from './fields.js';
import { getHeaderTokens, isField, type HeaderField } from './head.js';
import { isFieldValue, isToken } from './syntax.js';

/** A parsed HTTP/1.x response head. */
export interface ResponseHead {
  /** Minor HTTP version: `1.1` or `1.0`. */
  version: '1.0' | '1.1';
  /** Status code, 100–999. */
  status: number;
  /** Reason phrase as sent (may be empty). */
  reason: string;
  /** Header fields in arrival order. */
  headers: HeaderField[];
}

/** How the body of a response is delimited (RFC 9112 §6.3). */
export type ResponseFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  /** The body runs until the upstream closes the connection. */
  | { kind: 'close' }
  /** 101 to an upgrade, or 2xx to CONNECT: everything after the head is tunnel data. */
  | { kind: 'tunnel' };

/** The error of a malformed or ambiguous response (502). */
export const badResponse = (message: string) => new ProxyError('ERR_PROXY_BAD_RESPONSE', message);

/** `HTTP/x.y SP 3DIGIT [SP reason-phrase]`; the SP before an empty reason may be missing. */
const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: (.*))?$/s;

/**
 * Parses the text of a response head (everything before the empty line, CRLFs included, no final
 * CRLF CRLF). Strict like the request side: bare CR or LF, obs-fold, whitespace before a colon,
 * control characters, or a malformed status line are errors (502).
 */
export function parseResponseHead(text: string): ResponseHead {
  const lineEnd = text.indexOf('\r\n');
  const statusLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  checkLineEndings(statusLine, badResponse, 'response head');
  const { version, status, reason } = parseStatusLine(statusLine);
  const headers = lineEnd < 0 ? [] : parseFields(text, lineEnd + 2, badResponse, 'response head');
  return { version, status, reason, headers };
}

/** Version, status and reason of a status line. */
function parseStatusLine(line: string): Pick<ResponseHead, 'version' | 'status' | 'reason'> {
  // The usual `HTTP/1.1 200 OK`, read by position; anything else goes through the full check.
  if (line.startsWith('HTTP/1.') && line.charCodeAt(8) === 0x20 && (line.length === 12 || line.charCodeAt(12) === 0x20)) {
    const minor = line.charCodeAt(7);
    const status = digit(line, 9) * 100 + digit(line, 10) * 10 + digit(line, 11);
    const reason = line.length > 13 ? line.slice(13) : '';
    if ((minor === 0x30 || minor === 0x31) && status >= 100 && isFieldValue(reason)) {
      return { version: minor === 0x31 ? '1.1' : '1.0', status, reason };
    }
  }
  const match = STATUS_LINE.exec(line);
  if (!match) throw badResponse('malformed status line');
  const [, major, minor, code, reason = ''] = match as unknown as [string, string, string, string, string | undefined];
  if (major !== '1' || (minor !== '0' && minor !== '1')) throw badResponse(`unsupported HTTP version ${major}.${minor}`);
  const status = Number(code);
  if (status < 100) throw badResponse(`invalid status code ${code}`);
  if (!isFieldValue(reason)) throw badResponse('invalid character in reason phrase');
  return { version: minor === '1' ? '1.1' : '1.0', status, reason };
}

/** The decimal digit at `index`, or a value that makes the status invalid. */
function digit(line: string, index: number): number {
  const value = line.charCodeAt(index) - 0x30;
  return value >= 0 && value <= 9 ? value : -1000;
}

/**
 * Decides a response's framing (RFC 9112 §6.3), refusing every ambiguity: Transfer-Encoding
 * together with Content-Length, `chunked` applied more than once, Transfer-Encoding in HTTP/1.0,
 * differing or non-numeric Content-Length values, and a 101 nobody asked for. These checks apply
 * to bodiless responses too (HEAD, 1xx, 204, 304), since their headers still reach the client;
 * only a tunnel's (2xx to CONNECT, 101) Content-Length and Transfer-Encoding are ignored, as
 * RFC 9112 requires.
 */
export function responseFraming(head: ResponseHead, requestMethod: string, upgradeRequested: boolean): ResponseFraming {
  if (head.status === 101) {
    if (!upgradeRequested) throw badResponse('101 Switching Protocols without an upgrade request');
    return { kind: 'tunnel' };
  }
  if (requestMethod === 'CONNECT' && head.status >= 200 && head.status < 300) return { kind: 'tunnel' };

  const framing = bodyFraming(head);
  const bodiless = requestMethod === 'HEAD' || head.status < 200 || head.status === 204 || head.status === 304;
  return bodiless ? { kind: 'none' } : framing;
}

/** Framing from Transfer-Encoding and Content-Length alone, validated. */
function bodyFraming(head: ResponseHead): ResponseFraming {
  let lengths: string[] | undefined;
  let hasTransferEncoding = false;
  for (const [name, value] of head.headers) {
    if (isField(name, 'content-length')) (lengths ??= []).push(value);
    else if (isField(name, 'transfer-encoding')) hasTransferEncoding = true;
  }
  if (hasTransferEncoding) {
    if (lengths) throw badResponse('both Content-Length and Transfer-Encoding');
    if (head.version === '1.0') throw badResponse('Transfer-Encoding in an HTTP/1.0 response');
    const codings = getHeaderTokens(head.headers, 'transfer-encoding').map((coding) => coding.split(';')[0]!.trim());
    if (codings.length === 0 || !codings.every(isToken)) throw badResponse('malformed Transfer-Encoding');
    const chunked = codings.filter((coding) => coding === 'chunked').length;
    if (chunked > 1) throw badResponse('chunked applied more than once');
    return codings[codings.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  if (!lengths) return { kind: 'close' };
  const length = contentLength(lengths, badResponse);
  return length === 0 ? { kind: 'none' } : { kind: 'length', length };
}
