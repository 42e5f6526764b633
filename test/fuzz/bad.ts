// Generators of messages with one construct the strict rules refuse, and of what a correct parser
// must then do. Worked out from the parser code:
//
// Refused at head time (no head event for the message; the parser throws before emitting it):
//  - syntax, for every head: whitespace between a field name and its colon, an obs-fold line,
//    a bare LF or bare CR, a control character in a value, a field name that is not a token, a
//    line without a colon, a malformed request or status line, a head over the size limit;
//  - requests (CONNECT included): no Host in HTTP/1.1, more than one Host;
//  - framing, for every request: Content-Length with Transfer-Encoding, differing or non-decimal
//    (or over 15 digits) Content-Lengths, Transfer-Encoding other than exactly one `chunked`,
//    Transfer-Encoding in HTTP/1.0; a CONNECT is refused for any Transfer-Encoding or a
//    Content-Length other than 0 (it has no content), so each of these refuses it too;
//  - framing, for responses other than tunnels (101 to an upgrade request, 2xx to CONNECT), 1xx,
//    204, 304 and responses to HEAD included: Content-Length with Transfer-Encoding, differing or
//    non-decimal Content-Lengths, `chunked` more than once, an empty or non-token coding,
//    Transfer-Encoding in HTTP/1.0; and a 101 to a request that asked for no upgrade. Codings
//    without a final `chunked` are not refused in a response: the body is then close-delimited
//    (RFC 9112 §6.3).
//
// Refused at body time (the head was valid and is emitted; the error comes at the bad byte): a
// malformed chunk-size line (not hex, over 16 digits or 2^53, a malformed extension, a bare CR or
// LF, over 4 KiB), chunk data not followed by CRLF, a malformed trailer field line.
import fc from 'fast-check';
import type { ProxyErrorCode } from '../../src/core/errors.js';
import { CRLF, dataChunk, fieldValue, lastChunk, plainRequest, request, token, type Chunk, type GenRequest, type ResponseOptions } from './arbitraries.js';

/** A message stream whose message number `before` (0-based) holds one refused construct. */
export interface BadCase {
  /** What is wrong, for the report. */
  construct: string;
  text: string;
  /** Valid messages (interim heads, for responses) before the bad one: their heads must come. */
  before: number;
  /** Message ends that must come before the refusal (none for interim heads). */
  ends: number;
  /** 'head': no head of the bad message is emitted; 'body': its head is, then the error inside its body. */
  when: 'head' | 'body';
  code: ProxyErrorCode;
  maxHeaderBytes: number;
  /** For a body refusal: the body as sent, and the offset in it of the byte that must throw at the latest. */
  wire: string;
  errorAt: number;
  /** For a body refusal: the payload a de-chunker emits before the error. */
  payload: string;
  /** The valid requests before the bad one (none for responses: those are interim heads). */
  prior: GenRequest[];
}

/** A bad response, with what the parser is told about the request. */
export interface BadResponseCase extends BadCase {
  options: ResponseOptions;
}

const NAME_BREAKERS = ['(', ')', '"', '@', '\xe9', '\x00', '/', '[', '{', '\x7f', ',', ';', '=', '\x80'];
const CONTROLS = ['\x00', '\x01', '\x0b', '\x0c', '\x1f', '\x7f'];
const INVALID_LENGTHS = ['1000000000000000', '99999999999999999999', '+5', '-1', '0x5', '5a', '', '5 5', '1e3', '5.0', '\xb9', ' , ', '5,', ',5', '5;'];
const BAD_REQUEST_LINES = [
  'GET  / HTTP/1.1',
  'GET / HTTP/1.2',
  'GET / HTTP/2.0',
  'GET /',
  'G(T / HTTP/1.1',
  'GET /\x01 HTTP/1.1',
  'GET / http/1.1',
  ' GET / HTTP/1.1',
  'GET / HTTP/1.1 ',
  'GET\t/ HTTP/1.1',
  'GET /\x7f HTTP/1.1',
  'GET / a HTTP/1.1',
  'GET / HTTP/1.10',
  'GET / HTTP/01.1',
  '/ HTTP/1.1',
  'GET / HTTP/1.1\x00',
  'G\xe9T / HTTP/1.1',
];
const BAD_STATUS_LINES = [
  'HTTP/1.1 20 OK',
  'HTTP/1.1 2000 OK',
  'HTTP/1.1 abc OK',
  'HTTP/2 200 OK',
  'HTTP/2.0 200 OK',
  'HTTP/1.2 200 OK',
  'ICY 200 OK',
  'http/1.1 200 OK',
  'HTTP/1.1  200 OK',
  'HTTP/1.1\t200 OK',
  'HTTP/1.1 200 O\x00K',
  'HTTP/1.1 099 Low',
  'HTTP/1.1 200\tOK',
  ' HTTP/1.1 200 OK',
  'HTTP/1.1 -20 OK',
  'HTTP/1.1 200OK',
  'HTTP/1.1 20x OK',
  'HTTP/1.1 200 OK\x7f',
  'HTTP/1.1 200 OK\x0b',
];

const isNamed = (line: string, lower: string) => line.slice(0, line.indexOf(':')).toLowerCase() === lower;
const dropFraming = (lines: string[]) => lines.filter((l, i) => i === 0 || !(isNamed(l, 'content-length') || isNamed(l, 'transfer-encoding')));
const insertLine = (lines: string[], line: string, at: number) => {
  const result = [...lines];
  result.splice(1 + (at % lines.length), 0, line); // never before the start line
  return result;
};
const withVersion = (lines: string[], version: string, isRequest: boolean) => {
  const result = [...lines];
  result[0] = isRequest ? result[0]!.replace(/HTTP\/1\.[01]$/, `HTTP/${version}`) : result[0]!.replace(/^HTTP\/1\.[01]/, `HTTP/${version}`);
  return result;
};
/** Index of a field line picked by `pick` (one is added when there is none). */
function pickField(lines: string[], pick: number): [string[], number] {
  const result = lines.length > 1 ? [...lines] : [...lines, 'X-Added: v'];
  return [result, 1 + (pick % (result.length - 1))];
}

/** What a recipe draws: which construct, where, and the values it uses. */
interface Recipe {
  construct: string;
  pick: number;
  at: number;
  variant: number;
  value: string;
}

const recipe = (constructs: readonly string[]) =>
  fc.record({ construct: fc.constantFrom(...constructs), pick: fc.nat(), at: fc.nat(), variant: fc.nat(), value: fieldValue });

/** Applies a framing construct (shared by requests and responses); undefined when `construct` is not one. */
function framingConstruct(lines: string[], r: Recipe, badCodings: readonly string[][], isRequest: boolean): string[] | undefined {
  const n = 1 + (r.variant % 50);
  switch (r.construct) {
    case 'cl+te': {
      const both = r.variant % 2 === 0 ? ['Transfer-Encoding: chunked', `Content-Length: ${n}`] : [`Content-Length: ${n}`, 'transfer-encoding:  Chunked '];
      return insertLine(insertLine(dropFraming(lines), both[0]!, r.at), both[1]!, r.pick);
    }
    case 'cl-conflict': {
      const other = n + 1 + (r.pick % 9);
      const base = dropFraming(lines);
      return r.variant % 3 === 0
        ? insertLine(base, `Content-Length: ${n}, ${other}`, r.at)
        : insertLine(insertLine(base, `Content-Length: ${n}`, r.at), `Content-Length: ${other}`, r.pick);
    }
    case 'cl-invalid':
      return insertLine(dropFraming(lines), `Content-Length: ${INVALID_LENGTHS[r.variant % INVALID_LENGTHS.length]}`, r.at);
    case 'te-bad': {
      let result = dropFraming(lines);
      const codings = badCodings[r.variant % badCodings.length]!;
      codings.forEach((coding, i) => (result = insertLine(result, `Transfer-Encoding: ${coding}`, r.at + i * r.pick)));
      return result;
    }
    case 'te-http10':
      return insertLine(withVersion(dropFraming(lines), '1.0', isRequest), 'Transfer-Encoding: chunked', r.at);
  }
  return undefined;
}

/** Applies a syntax construct to head lines; returns the head text without its final CRLF CRLF. */
function syntaxConstruct(lines: string[], r: Recipe, badStartLines: readonly string[]): string | undefined {
  const join = (ls: string[]) => ls.join(CRLF);
  switch (r.construct) {
    case 'ws-colon': {
      const [ls, i] = pickField(lines, r.pick);
      const line = ls[i]!;
      const colon = line.indexOf(':');
      ls[i] = line.slice(0, colon) + [' ', '\t', '  ', ' \t'][r.variant % 4] + line.slice(colon);
      return join(ls);
    }
    case 'obs-fold': {
      const fold = (r.variant % 2 === 0 ? ' ' : '\t') + r.value;
      const ls = [...lines];
      ls.splice(1 + (r.at % lines.length), 0, fold);
      return join(ls);
    }
    case 'bare-lf': {
      const text = join(lines);
      const crlfs = [...text.matchAll(/\r\n/g)].map((m) => m.index);
      if (r.variant % 2 === 0 && crlfs.length > 0) {
        const at = crlfs[r.at % crlfs.length]!;
        return text.slice(0, at) + text.slice(at + 1);
      }
      const at = r.at % (text.length + 1);
      return text.slice(0, at) + '\n' + text.slice(at);
    }
    case 'bare-cr': {
      const text = join(lines);
      const at = r.at % (text.length + 1);
      return text.slice(0, at) + '\r' + text.slice(at);
    }
    case 'ctl-value': {
      const [ls, i] = pickField(lines, r.pick);
      const line = ls[i]!;
      const at = line.indexOf(':') + 1 + (r.at % (line.length - line.indexOf(':')));
      ls[i] = line.slice(0, at) + CONTROLS[r.variant % CONTROLS.length] + line.slice(at);
      return join(ls);
    }
    case 'bad-name': {
      const [ls, i] = pickField(lines, r.pick);
      const line = ls[i]!;
      const colon = line.indexOf(':');
      const breaker = NAME_BREAKERS[r.variant % NAME_BREAKERS.length]!;
      ls[i] = r.variant % 7 === 6 ? line.slice(colon) : line.slice(0, r.at % colon) + breaker + line.slice(r.at % colon);
      return join(ls);
    }
    case 'no-colon': {
      const [ls, i] = pickField(lines, r.pick);
      ls[i] = ['Host', 'X-A b', 'Content-Length 5', 'chunked'][r.variant % 4]!;
      return join(ls);
    }
    case 'start-line': {
      const ls = [...lines];
      ls[0] = badStartLines[r.variant % badStartLines.length]!;
      return join(ls);
    }
  }
  return undefined;
}

const SYNTAX = ['ws-colon', 'obs-fold', 'bare-lf', 'bare-cr', 'ctl-value', 'bad-name', 'no-colon', 'start-line', 'oversized'];
const FRAMING = ['cl+te', 'cl-conflict', 'cl-invalid', 'te-bad', 'te-http10'];
const REQUEST_CODINGS = [
  ['gzip'],
  ['chunked, gzip'],
  ['gzip, chunked'],
  ['chunked, chunked'],
  ['chunked', 'chunked'],
  ['gzip', 'chunked'],
  [''],
  ['xchunked'],
  ['identity'],
  [','],
];
const RESPONSE_CODINGS = [
  ['chunked, chunked'],
  ['chunked', 'chunked'],
  ['chunked', 'gzip, chunked'],
  [''],
  [','],
  ['gz ip'],
  ['"chunked"'],
  ['\xe9'],
  ['chunked, ch unked'],
];

/** Pads a head so it is over `max` bytes (measured from its start line to its CRLF CRLF). */
function oversize(lines: string[], max: number, extra: number): string {
  const size = lines.join(CRLF).length + 4;
  const pad = `X-Pad: ${'p'.repeat(Math.max(0, max + 1 - size - 9) + (extra % 64))}`;
  return [...lines, pad].join(CRLF);
}

/** The head lines (start line first) of a generated message head, from its text. */
const headLines = (text: string, headEnd: number) => trimLeading(text.slice(0, headEnd - 4)).split(CRLF);
const trimLeading = (text: string) => text.replace(/^(\r\n)+/, '');

// --- chunked bodies with one bad spot -----------------------------------------------------------

/** A bad stretch of a chunked body: where in it the scanner must throw at the latest, what payload it emits first. */
export interface BadChunk {
  construct: string;
  fragment: string;
  errorAt: number;
  payload: string;
}

/** First index from `from` where a line scanner must stop: a LF, or the byte after a bare CR. */
function stopAt(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\n') return i;
    if (i > 0 && text[i - 1] === '\r') return i;
  }
  return text.length;
}

const BAD_SIZES = [
  '',
  ' 5',
  '-5',
  '+5',
  '0x5',
  'g',
  '5g',
  '5 ',
  '5\t',
  '5;',
  '5; ',
  '5;=x',
  '5;a=',
  '5;a=b c',
  '5;a="b',
  '5;a="\x00"',
  '5;a\x00',
  '5;\xe9',
  '\xe95',
  '5\x00',
  '10000000000000000',
  'fffffffffffffff',
  '20000000000000',
  '00000000000000005',
  'FFFFFFFFFFFFFFFFFFFFFFFF',
  '5;a=b;',
  '5 ;',
  ';a',
  '5,6',
  '5.0',
];
const BAD_SIZE_CHARS = [...'gGxX-+,./="\x00\x7f\xff\x80'];
const hexDigits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: min, maxLength: max });
const BAD_TRAILERS = [
  ' obs: fold',
  '\tobs',
  'X :y',
  'X\t: y',
  'NoColon',
  ': empty',
  'X(: y',
  'X: a\x00b',
  'X: a\x01',
  'X\xe9: y',
  'X: a\nb',
  'X: a\rb',
  'X: y\r',
];

const badSize = fc.oneof(
  fc.constantFrom(...BAD_SIZES),
  fc
    .tuple(hexDigits(0, 3), fc.constantFrom(...BAD_SIZE_CHARS), fc.string({ unit: fc.constantFrom(...'ab1;= \t'), maxLength: 3 }))
    .map(([d, c, t]) => d + c + t),
  hexDigits(17, 24).map((d) => `1${d}`),
  fc.tuple(fc.constantFrom(...'23456789abcdefABCDEF'), hexDigits(13, 13)).map(([first, rest]) => first + rest),
);

export const badChunk: fc.Arbitrary<BadChunk> = fc.oneof(
  badSize.map((size) => ({ construct: `chunk-size ${JSON.stringify(size)}`, fragment: `${size}${CRLF}hello${CRLF}`, errorAt: size.length + 1, payload: '' })),
  fc.tuple(dataChunk, fc.constantFrom('\n', '\rX')).map(([chunk, ending]) => {
    const size = chunk.wire.slice(0, chunk.wire.indexOf(CRLF));
    const fragment = `${size}${ending}${chunk.data}${CRLF}`;
    return { construct: `bare ${ending === '\n' ? 'LF' : 'CR'} after size`, fragment, errorAt: stopAt(fragment, 0), payload: '' };
  }),
  fc.tuple(dataChunk, fc.constantFrom('X', '\n', '\rX', 'a\r\n')).map(([chunk, extra]) => {
    const fragment = chunk.wire.slice(0, -2) + extra + CRLF;
    const dataEnd = chunk.wire.length - 2;
    return { construct: `chunk data overrun ${JSON.stringify(extra)}`, fragment, errorAt: extra === '\rX' ? dataEnd + 1 : dataEnd, payload: chunk.data };
  }),
  fc.tuple(lastChunk, fc.constantFrom(...BAD_TRAILERS)).map(([last, trailer]) => {
    const before = last.slice(0, -2); // the last chunk and any valid trailers, without the final CRLF
    const fragment = before + trailer + CRLF + CRLF;
    return { construct: `trailer ${JSON.stringify(trailer)}`, fragment, errorAt: stopAt(fragment, before.length), payload: '' };
  }),
  fc.constant({ construct: 'chunk line over 4 KiB', fragment: `5;${'a'.repeat(5000)}${CRLF}`, errorAt: 4096, payload: '' }),
);

/** A chunked body with one bad stretch: valid chunks, the bad stretch, then anything valid. */
export const badChunkedBody = fc
  .tuple(fc.array(dataChunk, { maxLength: 3 }), badChunk, fc.array(dataChunk, { maxLength: 2 }), lastChunk)
  .map(([good, bad, more, last]: [Chunk[], BadChunk, Chunk[], string]) => {
    const prefix = good.map((c) => c.wire).join('');
    return {
      construct: bad.construct,
      wire: prefix + bad.fragment + more.map((c) => c.wire).join('') + last,
      errorAt: prefix.length + bad.errorAt,
      payload: good.map((c) => c.data).join('') + bad.payload,
    };
  });

// --- requests -----------------------------------------------------------------------------------

const REQUEST_CONSTRUCTS = [...SYNTAX, ...FRAMING, 'host-dup', 'host-missing'];

export const badRequest: fc.Arbitrary<BadCase> = fc
  .record({
    before: fc.array(plainRequest, { maxLength: 2 }),
    base: request,
    recipe: recipe([...REQUEST_CONSTRUCTS, 'chunked-body', 'chunked-body']),
    body: badChunkedBody,
    after: fc.oneof(
      fc.constant(''),
      request.map((r) => r.text),
    ),
    headLimit: fc.nat(200),
  })
  .map(({ before, base, recipe: r, body, after, headLimit }): BadCase => {
    const prefix = before.map((m) => m.text).join('');
    const leading = base.text.slice(0, base.text.length - trimLeading(base.text).length);
    let lines = headLines(base.text, base.headEnd);
    const common = {
      before: before.length,
      ends: before.length,
      code: 'ERR_PROXY_BAD_REQUEST' as ProxyErrorCode,
      maxHeaderBytes: 65536,
      wire: '',
      errorAt: 0,
      payload: '',
      prior: before,
    };
    if (r.construct === 'chunked-body') {
      lines = [
        lines[0]!.replace(/^CONNECT /, 'POST ').replace(/HTTP\/1\.0$/, 'HTTP/1.1'),
        ...lines.slice(1).filter((l) => !/^(host|content-length|transfer-encoding|connection|upgrade):/i.test(l)),
      ];
      lines.splice(1 + (r.at % lines.length), 0, 'Host: h', 'Transfer-Encoding: chunked');
      const text = prefix + leading + lines.join(CRLF) + CRLF + CRLF + body.wire + after;
      return { ...common, construct: `body: ${body.construct}`, text, when: 'body', wire: body.wire, errorAt: body.errorAt, payload: body.payload };
    }
    let head: string | undefined;
    let maxHeaderBytes = 65536;
    let code: ProxyErrorCode = 'ERR_PROXY_BAD_REQUEST';
    if (r.construct === 'host-dup') {
      lines = insertLine(lines, `Host: ${r.value}`, r.at);
      if (lines.filter((l) => isNamed(l, 'host')).length < 2) lines = insertLine(lines, 'host: h', r.pick);
      head = lines.join(CRLF);
    } else if (r.construct === 'host-missing')
      head = withVersion(lines, '1.1', true)
        .filter((l) => !isNamed(l, 'host'))
        .join(CRLF);
    else if (r.construct === 'oversized') {
      // Valid messages before it (and their trailers) must fit: the limit is just above the largest.
      maxHeaderBytes = Math.max(64, ...before.map((m) => Math.max(m.headEnd, m.trailerBytes))) + headLimit;
      head = oversize(lines, maxHeaderBytes, r.variant);
      code = 'ERR_PROXY_HEADERS_TOO_LARGE';
    } else head = framingConstruct(lines, r, REQUEST_CODINGS, true)?.join(CRLF) ?? syntaxConstruct(lines, r, BAD_REQUEST_LINES);
    const text = prefix + leading + head! + CRLF + CRLF + base.body + after;
    return { ...common, construct: r.construct, text, when: 'head', code, maxHeaderBytes };
  });

// --- responses ----------------------------------------------------------------------------------

const RESPONSE_CONSTRUCTS = [...SYNTAX, ...FRAMING, '101-unrequested'];

const interim = fc
  .tuple(fc.constantFrom(100, 102, 103), fc.array(fc.tuple(token(8), fieldValue), { maxLength: 2 }))
  .map(([status, fields]) => `HTTP/1.1 ${status} Interim${CRLF}${fields.map(([n, v]) => `X-${n}: ${v}${CRLF}`).join('')}${CRLF}`);

export const badResponse: fc.Arbitrary<BadResponseCase> = fc
  .record({
    interims: fc.array(interim, { maxLength: 2 }),
    status: fc.constantFrom(200, 204, 304, 404, 100, 103, 599),
    method: fc.constantFrom('GET', 'POST', 'HEAD'),
    fields: fc.array(fc.tuple(fc.constantFrom('Server', 'Date', 'x-y', 'ETag'), fieldValue), { maxLength: 3 }),
    recipe: recipe([...RESPONSE_CONSTRUCTS, 'chunked-body', 'chunked-body']),
    body: badChunkedBody,
    after: fc.string({ unit: fc.constantFrom(...'HTP/1. 20\r\n:ab'), maxLength: 30 }),
    upgradeRequested: fc.boolean(),
    dechunk: fc.boolean(),
    headLimit: fc.nat(200),
  })
  .map((c): BadResponseCase => {
    const r = c.recipe;
    const prefix = c.interims.join('');
    const lines = [`HTTP/1.1 ${c.status} Reason`, ...c.fields.map(([n, v]) => `${n}: ${v}`)];
    const options: ResponseOptions = { maxHeaderBytes: 65536, requestMethod: c.method, upgradeRequested: c.upgradeRequested, dechunk: c.dechunk };
    const common = {
      before: c.interims.length,
      ends: 0,
      code: 'ERR_PROXY_BAD_RESPONSE' as ProxyErrorCode,
      maxHeaderBytes: 65536,
      wire: '',
      errorAt: 0,
      payload: '',
      prior: [],
    };
    if (r.construct === 'chunked-body') {
      lines[0] = 'HTTP/1.1 200 OK';
      lines.splice(1 + (r.at % lines.length), 0, 'Transfer-Encoding: chunked');
      const text = prefix + lines.join(CRLF) + CRLF + CRLF + c.body.wire + c.after;
      return {
        ...common,
        options: { ...options, requestMethod: 'GET' },
        construct: `body: ${c.body.construct}`,
        text,
        when: 'body',
        wire: c.body.wire,
        errorAt: c.body.errorAt,
        payload: c.body.payload,
      };
    }
    let head: string | undefined;
    if (r.construct === '101-unrequested') {
      lines[0] = 'HTTP/1.1 101 Switching Protocols';
      head = lines.join(CRLF);
      options.upgradeRequested = false;
    } else if (r.construct === 'oversized') {
      options.maxHeaderBytes = Math.max(64, ...c.interims.map((h) => h.length)) + c.headLimit;
      head = oversize(lines, options.maxHeaderBytes, r.variant);
    } else head = framingConstruct(lines, r, RESPONSE_CODINGS, false)?.join(CRLF) ?? syntaxConstruct(lines, r, BAD_STATUS_LINES);
    const text = prefix + head! + CRLF + CRLF + c.after;
    return { ...common, options, maxHeaderBytes: options.maxHeaderBytes, construct: r.construct, text, when: 'head' };
  });
