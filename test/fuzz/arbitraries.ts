// Generators of valid HTTP/1.1 messages for the parser properties. Every message is a latin1
// string (one character per byte) together with what a correct parser must report for it, so a
// property can compare the parser's events with the generated truth.
import fc from 'fast-check';
import type { HeaderField, RequestHead } from '../../src/core/http/head.js';
import type { ResponseFraming, ResponseHead } from '../../src/core/http/response-framing.js';

export const CRLF = '\r\n';
const TCHARS = [..."!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"];
/** Field names the generators set on purpose; random extra fields never use them. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade']);
const COMMON_NAMES = ['Accept', 'User-Agent', 'Cache-Control', 'Cookie', 'Via', 'X-Forwarded-For', 'ETag', 'Date', 'Server', 'Link', 'Vary', 'x-a', 'X-A'];

/** A token (RFC 9110 §5.6.2): method, field name, coding, extension name. */
export const token = (maxLength = 8) => fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength });

/** Any byte, as a latin1 character, with CR, LF and '0' more likely (they look like framing). */
export const anyByte = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constantFrom('\r', '\n', '0', '\r\n') },
);

/** Body bytes: anything, including CRLFs and what looks like a last chunk. */
export const bodyBytes = (minLength: number, maxLength: number) => fc.string({ unit: anyByte, minLength, maxLength }).map((s) => s.slice(0, maxLength));

const valueChar = fc
  .oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
    { weight: 2, arbitrary: fc.constantFrom(0x20, 0x09) },
    { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
  )
  .map((c) => String.fromCharCode(c));

/** Strips SP and HTAB at both ends, as a field value is parsed (RFC 9112 §5.1). */
export function trimOws(value: string): string {
  return value.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** A valid field value without the optional whitespace around it (may be empty; obs-text allowed). */
export const fieldValue = fc.string({ unit: valueChar, maxLength: 16 }).map(trimOws);

/** Optional whitespace around a field value. */
const ows = fc.constantFrom('', '', ' ', '  ', '\t', ' \t ');

/** One field line of a generated head: how it is written, and what a parser reports. */
export interface FieldLine {
  name: string;
  value: string;
  /** Whitespace written before and after the value (not part of it). */
  before: string;
  after: string;
}

export const lineOf = (field: FieldLine): string => `${field.name}:${field.before}${field.value}${field.after}`;
export const headerOf = (field: FieldLine): HeaderField => [field.name, field.value];
export const field = (name: string, value: string): FieldLine => ({ name, value, before: ' ', after: '' });

/** A field line with the given name (or a random one, never a framing or connection field). */
export const fieldLine = (name?: fc.Arbitrary<string>) =>
  fc
    .record({ name: name ?? fc.oneof(fc.constantFrom(...COMMON_NAMES), token(12)), value: fieldValue, before: ows, after: ows })
    .map((f) => (RESERVED.has(f.name.toLowerCase()) ? { ...f, name: `X-${f.name}` } : f));

/**
 * Inserts each group of `extra` into `lines` at a position drawn from `at` (so framing fields
 * move around); the lines of a group stay together and in order.
 */
export function insertAt<T>(lines: readonly T[], extra: readonly T[][], at: readonly number[]): T[] {
  const result = [...lines];
  extra.forEach((group, i) => result.splice((at[i] ?? 0) % (result.length + 1), 0, ...group));
  return result;
}

// --- chunked bodies -----------------------------------------------------------------------------

const quotedString = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...'ab;=, \t\x21#[]~\x80\xff') },
      { weight: 1, arbitrary: fc.constantFrom('\\"', '\\\\', '\\a', '\\\t', '\\\xe9') },
    ),
    { maxLength: 6 },
  )
  .map((parts) => `"${parts.join('')}"`);

const bws = fc.constantFrom('', '', ' ', '\t', ' \t');

/** `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`, valid (RFC 9112 §7.1.1). */
export const chunkExtensions = fc
  .array(fc.tuple(bws, bws, token(6), fc.option(fc.tuple(bws, bws, fc.oneof(token(6), quotedString)), { nil: undefined })), { maxLength: 2 })
  .map((exts) => exts.map(([b1, b2, name, value]) => `${b1};${b2}${name}${value ? `${value[0]}=${value[1]}${value[2]}` : ''}`).join(''));

/** A chunk size in hex, with random case and leading zeros. */
const chunkSize = (size: number) =>
  fc.tuple(fc.nat(3), fc.boolean()).map(([zeros, upper]) => {
    const hex = '0'.repeat(zeros) + size.toString(16);
    return upper ? hex.toUpperCase() : hex;
  });

/** One data chunk: its wire form and its payload. */
export interface Chunk {
  wire: string;
  data: string;
}

export const dataChunk = bodyBytes(1, 24).chain((data) =>
  fc.tuple(chunkSize(data.length), chunkExtensions).map(([size, ext]): Chunk => ({ wire: `${size}${ext}${CRLF}${data}${CRLF}`, data })),
);

/** The last chunk, trailer section and final CRLF (RFC 9112 §7.1). */
export const lastChunk = fc
  .tuple(fc.constantFrom('0', '0', '00', '000'), chunkExtensions, fc.array(fieldLine(), { maxLength: 2 }))
  .map(([zero, ext, trailers]) => `${zero}${ext}${CRLF}${trailers.map((t) => lineOf(t) + CRLF).join('')}${CRLF}`);

/** A valid chunked body: the wire bytes, and the payload a de-chunker must give back. */
export interface ChunkedBody {
  wire: string;
  payload: string;
  /** Bytes of the trailer section as the scanner counts them against its limit (all but the LFs). */
  trailerBytes: number;
}

export const chunkedBody = fc.tuple(fc.array(dataChunk, { maxLength: 4 }), lastChunk).map(([chunks, last]): ChunkedBody => {
  const trailers = last.slice(last.indexOf(CRLF) + 2);
  return {
    wire: chunks.map((c) => c.wire).join('') + last,
    payload: chunks.map((c) => c.data).join(''),
    trailerBytes: trailers.length - trailers.split('\n').length + 1, // every byte but the LFs
  };
});

// --- requests -----------------------------------------------------------------------------------

/** A generated valid request and what parsing it must give. */
export interface GenRequest {
  /** The bytes: leading empty lines, head, body. */
  text: string;
  /** Where the head ends in `text` (just past CRLF CRLF). */
  headEnd: number;
  /** The head as the parser must report it. */
  head: RequestHead;
  /** Body bytes as the request parser emits them (a chunked body raw: it does not de-chunk). */
  body: string;
  connect: boolean;
  /** Whether the parser waits for an upgrade decision after it. */
  upgrade: boolean;
  /** Whether nothing after it is a request (HTTP/1.0 without keep-alive, or Connection: close). */
  closeClient: boolean;
  /** Bytes of its trailer section as counted against the head limit. */
  trailerBytes: number;
  /** Bytes of its head as counted against the head limit (without the empty lines before it). */
  headBytes: number;
}

const targetChar = fc
  .oneof({ weight: 12, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) }, { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) })
  .map((c) => String.fromCharCode(c));

const requestTarget = fc.oneof(
  fc.constantFrom('http://a/', 'http://example.com:8080/p?q=1#f', '*', '/x', 'a:443', 'HTTP://A'),
  fc.string({ unit: targetChar, minLength: 1, maxLength: 24 }),
);

const requestMethod = fc
  .oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'M-SEARCH'), token(8))
  .map((m) => (m === 'CONNECT' ? 'GET' : m));

const connectionValue = fc.constantFrom(undefined, undefined, 'keep-alive', 'close', 'Upgrade', 'Keep-Alive, Upgrade', 'close, upgrade', 'TE');

/** How a request body is written: absent, Content-Length (in several valid spellings), chunked. */
const requestBody = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('none' as const), zeroLength: fc.constantFrom(undefined, '0', '00', '0, 0') }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('length' as const), data: bodyBytes(1, 40), spelling: fc.nat(4) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('chunked' as const), chunked: chunkedBody, te: fc.constantFrom('chunked', 'Chunked', 'CHUNKED') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('connect' as const), target: fc.constantFrom('a:443', 'example.com:8443', '[::1]:443') }) },
);

/** The Content-Length field lines for `n`, in one of several valid spellings. */
function lengthFields(n: number, spelling: number): FieldLine[] {
  switch (spelling) {
    case 0:
      return [field('Content-Length', `${n}`)];
    case 1:
      return [field('content-length', `00${n}`)];
    case 2:
      return [field('Content-Length', `${n}, ${n}`)];
    case 3:
      return [field('Content-Length', `${n}`), field('CONTENT-LENGTH', `${n}`)];
    default:
      return [{ name: 'Content-Length', value: `${n},${n}`, before: '\t', after: ' ' }];
  }
}

export const request = fc
  .record({
    leading: fc.nat(2),
    method: requestMethod,
    target: requestTarget,
    version: fc.constantFrom<'1.0' | '1.1'>('1.1', '1.1', '1.0'),
    host: fc.oneof(fc.constantFrom('a', 'example.com:8080'), fieldValue),
    hostIn10: fc.boolean(),
    extra: fc.array(fieldLine(), { maxLength: 4 }),
    connection: connectionValue,
    upgradeField: fc.boolean(),
    body: requestBody,
    at: fc.array(fc.nat(), { minLength: 6, maxLength: 6 }),
  })
  .map((r): GenRequest => {
    let version = r.version;
    let method = r.method;
    let target = r.target;
    const special: FieldLine[][] = [];
    let body = '';
    let trailerBytes = 0;
    const connect = r.body.kind === 'connect';
    if (r.body.kind === 'chunked') version = '1.1'; // Transfer-Encoding in HTTP/1.0 is refused
    if (version === '1.1' || r.hostIn10) special.push([field('Host', r.host)]);
    switch (r.body.kind) {
      case 'none':
        if (r.body.zeroLength !== undefined) special.push([field('Content-Length', r.body.zeroLength)]);
        break;
      case 'length':
        special.push(lengthFields(r.body.data.length, r.body.spelling));
        body = r.body.data;
        break;
      case 'chunked':
        special.push([field('Transfer-Encoding', r.body.te)]);
        body = r.body.chunked.wire;
        trailerBytes = r.body.chunked.trailerBytes;
        break;
      case 'connect':
        method = 'CONNECT';
        target = r.body.target;
    }
    if (r.connection !== undefined) special.push([field('Connection', r.connection)]);
    if (r.upgradeField) special.push([field('Upgrade', 'websocket')]);
    const fields = insertAt(r.extra, special, r.at);
    const headText = `${method} ${target} HTTP/${version}${CRLF}${fields.map((f) => lineOf(f) + CRLF).join('')}${CRLF}`;
    const leading = CRLF.repeat(r.leading);
    const tokens = (r.connection ?? '').split(',').map((t) => t.trim().toLowerCase());
    return {
      text: leading + headText + body,
      headEnd: leading.length + headText.length,
      head: { method, target, version, headers: fields.map(headerOf) },
      body,
      connect,
      upgrade: !connect && tokens.includes('upgrade') && r.upgradeField,
      closeClient: version === '1.0' ? !tokens.includes('keep-alive') : tokens.includes('close'),
      trailerBytes,
      headBytes: headText.length,
    };
  });

/** A request after which the parser reads the next request at once (no close, upgrade or CONNECT). */
export const plainRequest = request.filter((r) => !r.connect && !r.upgrade && !r.closeClient);

/** A stream of requests as one client connection sends it, with the upgrade decisions to apply. */
export interface RequestStream {
  requests: GenRequest[];
  /** Bytes after the last request: part of a head that never completes, or nothing. */
  tail: string;
  /** Whether the n-th upgrade request (by exchange id, cyclic) switched protocols. */
  decisions: boolean[];
}

/** The start of a request head, cut before its CRLF CRLF (the parser must wait for more). */
export const partialHead = fc.tuple(request, fc.nat()).map(([r, cut]) => r.text.slice(0, cut % (r.headEnd - 1)));

export const requestStream = fc.record({
  requests: fc.array(request, { minLength: 1, maxLength: 4 }),
  tail: fc.oneof(fc.constant(''), partialHead),
  decisions: fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }),
});

// --- responses ----------------------------------------------------------------------------------

/** What the response parser is told about the request the response answers. */
export interface ResponseOptions {
  maxHeaderBytes: number;
  requestMethod: string;
  upgradeRequested: boolean;
  dechunk: boolean;
}

/** A generated valid response (with any interim heads) and what parsing it must give. */
export interface GenResponse {
  options: ResponseOptions;
  /** The bytes, interim heads and extra bytes after the response included. */
  text: string;
  /** The heads as the parser must report them, interim ones first. */
  heads: { head: ResponseHead; framing: ResponseFraming['kind']; interim: boolean }[];
  /** Body bytes the parser must emit (payload only when de-chunking; tunnel bytes for a tunnel). */
  body: string;
  /** Whether EOF is signalled after the bytes (`end()`); a close-delimited body ends only then. */
  eof: boolean;
  /** Bytes of `text` that belong to the response (the rest is extra, not consumed), or all for a tunnel. */
  consumed: number;
  /** Whether message-end comes. */
  ends: boolean;
}

const reason = fc.oneof(fc.constantFrom('OK', 'Not Found', '', 'Switching Protocols'), fc.string({ unit: valueChar, maxLength: 12 }));

/** A status line: version, status and reason, sometimes without the SP before an empty reason. */
const statusLine = (version: '1.0' | '1.1', status: number, text: string, noSpace: boolean) =>
  `HTTP/${version} ${status}${text === '' && noSpace ? '' : ` ${text}`}`;

const headText = (line: string, fields: FieldLine[]) => `${line}${CRLF}${fields.map((f) => lineOf(f) + CRLF).join('')}${CRLF}`;

/** A 1xx head other than 101 (no framing fields: they would be checked, and refused if bad). */
const interimHead = fc
  .record({ status: fc.constantFrom(100, 102, 103, 199), reason, fields: fc.array(fieldLine(), { maxLength: 2 }), leading: fc.nat(1) })
  .map((h) => ({
    text: CRLF.repeat(h.leading) + headText(statusLine('1.1', h.status, h.reason, false), h.fields),
    head: { version: '1.1' as const, status: h.status, reason: h.reason, headers: h.fields.map(headerOf) },
  }));

/** How a final response is framed, with the request it answers. */
const responseShape = fc.oneof(
  fc.record({ kind: fc.constant('length' as const), data: bodyBytes(1, 40), spelling: fc.nat(4) }),
  fc.record({
    kind: fc.constant('chunked' as const),
    chunked: chunkedBody,
    te: fc.constantFrom(['chunked'], ['gzip, chunked'], ['gzip', 'Chunked'], ['CHUNKED']),
  }),
  fc.record({ kind: fc.constant('close' as const), data: bodyBytes(0, 40), te: fc.constantFrom(undefined, undefined, 'gzip', 'chunked, gzip') }),
  fc.record({ kind: fc.constant('bodiless' as const), why: fc.constantFrom('HEAD', '204', '304'), framing: fc.constantFrom('none', 'length', 'chunked') }),
  fc.record({ kind: fc.constant('tunnel' as const), why: fc.constantFrom('101', 'CONNECT'), framingJunk: fc.boolean() }),
);

export const response = fc
  .record({
    interims: fc.array(interimHead, { maxLength: 2 }),
    version: fc.constantFrom<'1.0' | '1.1'>('1.1', '1.1', '1.0'),
    status: fc.constantFrom(200, 201, 206, 299, 301, 404, 407, 500, 999),
    reason,
    noSpace: fc.boolean(),
    extra: fc.array(fieldLine(), { maxLength: 3 }),
    shape: responseShape,
    at: fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
    method: fc.constantFrom('GET', 'POST', 'CONNECT'),
    upgradeRequested: fc.boolean(),
    dechunk: fc.boolean(),
    after: bodyBytes(0, 16),
    eof: fc.boolean(),
    leading: fc.nat(1),
  })
  .map((r): GenResponse => {
    let version = r.version;
    let status: number = r.status;
    let method: string = r.method;
    let upgradeRequested = r.upgradeRequested;
    const special: FieldLine[][] = [];
    /** The body as sent, and as the parser must emit it. */
    let wire = '';
    let body = '';
    let framing: ResponseFraming['kind'];
    let tunnel = false;
    const shape = r.shape;
    switch (shape.kind) {
      case 'length':
        special.push(lengthFields(shape.data.length, shape.spelling));
        wire = body = shape.data;
        framing = 'length';
        break;
      case 'chunked':
        version = '1.1';
        special.push(shape.te.map((coding) => field('Transfer-Encoding', coding)));
        wire = shape.chunked.wire;
        body = r.dechunk ? shape.chunked.payload : wire;
        framing = 'chunked';
        break;
      case 'close':
        if (shape.te !== undefined) {
          version = '1.1';
          special.push([field('Transfer-Encoding', shape.te)]);
        }
        wire = body = shape.data;
        framing = 'close';
        break;
      case 'bodiless':
        if (shape.why === 'HEAD') method = 'HEAD';
        else status = Number(shape.why);
        if (shape.framing === 'length') special.push([field('Content-Length', '1234')]);
        if (shape.framing === 'chunked') {
          version = '1.1';
          special.push([field('Transfer-Encoding', 'chunked')]);
        }
        framing = 'none';
        break;
      case 'tunnel':
        if (shape.why === '101') {
          status = 101;
          upgradeRequested = true;
          special.push([field('Upgrade', 'websocket')], [field('Connection', 'Upgrade')]);
        } else {
          method = 'CONNECT';
          status = 200 + (status % 100);
        }
        // A tunnel's Content-Length and Transfer-Encoding are ignored, even together (RFC 9112 §6.3).
        if (shape.framingJunk) special.push([field('Content-Length', '3')], [field('Transfer-Encoding', 'chunked')]);
        framing = 'tunnel';
        tunnel = true;
    }
    // A 2xx to CONNECT is a tunnel: only the tunnel shape may answer CONNECT with one.
    if (!tunnel && method === 'CONNECT' && status >= 200 && status < 300) method = 'GET';
    const fields = insertAt(r.extra, special, r.at);
    const finalText = CRLF.repeat(r.leading) + headText(statusLine(version, status, r.reason, r.noSpace), fields);
    const interimText = r.interims.map((h) => h.text).join('');
    const message = interimText + finalText + wire;
    const text = message + r.after;
    const close = framing === 'close';
    return {
      options: { maxHeaderBytes: 65536, requestMethod: method, upgradeRequested, dechunk: r.dechunk },
      text,
      heads: [
        ...r.interims.map((h) => ({ head: h.head, framing: 'none' as const, interim: true })),
        { head: { version, status, reason: r.reason, headers: fields.map(headerOf) }, framing, interim: false },
      ],
      body: tunnel || close ? body + r.after : body,
      eof: r.eof,
      consumed: tunnel || close ? text.length : message.length,
      ends: !close || r.eof,
    };
  });
