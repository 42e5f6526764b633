// Helpers for the keep-alive tests: a reader that takes HTTP responses off a raw socket one at a
// time (so several requests can share one connection), and raw origins that speak keep-alive and
// record every request line and byte they get. Everything they open, they close; every wait is bounded.
import http from 'node:http';
import net from 'node:net';
import { connectTo, startHttpOrigin, startRawOrigin, type Closable } from './net.js';

/** Default bound for one read: tests fail with a message after it instead of hanging. */
export const WAIT_MS = 3_000;

/** One HTTP response as it arrived on the wire. */
export interface WireResponse {
  statusLine: string;
  status: number;
  /** Header fields as `[name, value]`, in order and case. */
  headers: [string, string][];
  /** The decoded body (chunk framing removed when the response was chunked). */
  body: string;
  /** The body bytes exactly as they arrived (with chunk framing and trailers, if any). */
  rawBody: string;
  /** Every byte of the response, head included. */
  raw: string;
}

/** Values of a field (case-insensitive name), joined with ", "; undefined when absent. */
export function header(response: { headers: [string, string][] }, name: string): string | undefined {
  const values = response.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
  return values.length ? values.join(', ') : undefined;
}

/** Whether a comma-separated field (Connection, ...) holds `token`, case-insensitively. */
export function hasToken(response: { headers: [string, string][] }, name: string, token: string): boolean {
  return (header(response, name) ?? '')
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .includes(token.toLowerCase());
}

/** Splits a head (without the final blank line) into its first line and `[name, value]` pairs. */
export function parseHead(head: string): { firstLine: string; headers: [string, string][] } {
  const [firstLine = '', ...lines] = head.split('\r\n');
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon < 0) headers.push([line, '']);
    else headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { firstLine, headers };
}

class Incomplete extends Error {}

/** Decodes a chunked body at the start of `text`: the decoded body and how many bytes it used. */
function dechunk(text: string): { body: string; used: number } {
  let offset = 0;
  let body = '';
  for (;;) {
    const lineEnd = text.indexOf('\r\n', offset);
    if (lineEnd < 0) throw new Incomplete();
    const size = Number.parseInt(text.slice(offset, lineEnd).split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) throw new Error(`bad chunk size line ${JSON.stringify(text.slice(offset, lineEnd))}`);
    offset = lineEnd + 2;
    if (size === 0) {
      // Trailers, then an empty line.
      for (;;) {
        const end = text.indexOf('\r\n', offset);
        if (end < 0) throw new Incomplete();
        const line = text.slice(offset, end);
        offset = end + 2;
        if (line === '') return { body, used: offset };
      }
    }
    if (text.length < offset + size + 2) throw new Incomplete();
    body += text.slice(offset, offset + size);
    offset += size + 2;
  }
}

/**
 * Takes responses off one socket in order. Attach it right after connecting, before writing,
 * so no byte is missed. Every read is bounded; a read that cannot finish rejects with what it saw.
 */
export class ResponseReader {
  private buffer = '';
  private ended = false;
  private wakers: (() => void)[] = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('latin1');
      this.wake();
    });
    socket.on('end', () => this.finish());
    socket.on('close', () => this.finish());
  }

  /** True once the peer ended or the socket closed. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Bytes received and not taken as part of a response yet. */
  get pending(): string {
    return this.buffer;
  }

  private finish(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const wake of wakers) wake();
  }

  /** Waits for more data or the end, up to `deadline`; false when the deadline passed. */
  private more(deadline: number): Promise<boolean> {
    const left = deadline - Date.now();
    if (left <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), left);
      this.wakers.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Reads the next response. `method` is the request's (HEAD responses have no body);
   * 1xx responses are returned on their own, like any other.
   */
  async next(options: { method?: string; timeoutMs?: number } = {}): Promise<WireResponse> {
    const deadline = Date.now() + (options.timeoutMs ?? WAIT_MS);
    for (;;) {
      const parsed = this.tryParse(options.method ?? 'GET');
      if (parsed) return parsed;
      if (this.ended) throw new Error(`connection closed before a whole response; got ${JSON.stringify(this.buffer.slice(0, 300))}`);
      if (!(await this.more(deadline))) {
        throw new Error(`no whole response within ${options.timeoutMs ?? WAIT_MS} ms; got ${JSON.stringify(this.buffer.slice(0, 300))}`);
      }
    }
  }

  private tryParse(method: string): WireResponse | undefined {
    const headEnd = this.buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return undefined;
    const { firstLine, headers } = parseHead(this.buffer.slice(0, headEnd));
    const status = Number(firstLine.split(' ')[1]);
    const bodyStart = headEnd + 4;
    const base = { statusLine: firstLine, status, headers };
    const take = (used: number, body: string): WireResponse => {
      const raw = this.buffer.slice(0, bodyStart + used);
      const rawBody = this.buffer.slice(bodyStart, bodyStart + used);
      this.buffer = this.buffer.slice(bodyStart + used);
      return { ...base, body, rawBody, raw };
    };
    if ((status >= 100 && status < 200) || status === 204 || status === 304 || method === 'HEAD') return take(0, '');
    const rest = this.buffer.slice(bodyStart);
    const te = header(base, 'transfer-encoding');
    if (te !== undefined && /chunked\s*$/i.test(te)) {
      try {
        const { body, used } = dechunk(rest);
        return take(used, body);
      } catch (error) {
        if (error instanceof Incomplete) return undefined;
        throw error;
      }
    }
    const cl = header(base, 'content-length');
    if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) throw new Error(`response with an unusable Content-Length ${JSON.stringify(cl)}: ${JSON.stringify(this.buffer.slice(0, 300))}`);
      const length = Number(cl);
      if (rest.length < length) return undefined;
      return take(length, rest.slice(0, length));
    }
    // Close-delimited: the body is everything until the end.
    if (!this.ended) return undefined;
    return take(rest.length, rest);
  }

  /** Waits (bounded) for the peer to end or close the connection; true if it did. */
  async waitEnd(timeoutMs = WAIT_MS): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (!(await this.more(deadline))) return this.ended;
    }
    return true;
  }
}

/** A raw connection to the proxy with a reader attached. Close it with `socket.destroy()`. */
export async function openClient(port: number): Promise<{ socket: net.Socket; reader: ResponseReader }> {
  const socket = await connectTo(port);
  return { socket, reader: new ResponseReader(socket) };
}

/** A raw client of {@link openClient}: the socket and the reader of its responses. */
export type Client = Awaited<ReturnType<typeof openClient>>;

/**
 * The set-up and tear-down of most keep-alive tests: opens a client to `proxy` (started, or
 * starting), runs `body` with it, then destroys the client and closes the proxy and `others`
 * (origins), in that order, whatever happened (even when the proxy failed to start).
 */
export async function withClient<P extends Closable & { port: number }>(
  proxy: P | Promise<P>,
  others: readonly Closable[],
  body: (client: Client, proxy: P) => Promise<void>,
): Promise<void> {
  let started: P | undefined;
  let client: Client | undefined;
  try {
    started = await proxy;
    client = await openClient(started.port);
    await body(client, started);
  } finally {
    client?.socket.destroy();
    await started?.close();
    for (const other of others) await other.close();
  }
}

/** Writes one request and reads its response on a kept-alive raw client. */
export async function exchange(client: { socket: net.Socket; reader: ResponseReader }, request: string, method?: string): Promise<WireResponse> {
  client.socket.write(request);
  return client.reader.next({ method: method ?? request.slice(0, request.indexOf(' ')) });
}

/** A request as a raw origin parsed it. */
export interface OriginRequest {
  /** 1-based number of the origin connection it came on. */
  connection: number;
  line: string;
  method: string;
  target: string;
  headers: [string, string][];
  body: string;
}

/** What a raw origin writes back for one request. */
export type Reply = string | { data: string; end?: boolean; delayMs?: number };

/**
 * A raw keep-alive origin. It parses requests strictly (Content-Length or chunked bodies; anything
 * it cannot parse stops the connection's parsing, with no answer), answers each complete request
 * with `respond`'s exact bytes, in order, and ends the socket after a reply with `end` or to a
 * request with `Connection: close`. It records every byte, every parsed request, and counts
 * connections accepted and closed.
 */
export async function startKeepAliveOrigin(
  respond: (request: OriginRequest, socket: net.Socket) => Reply | Promise<Reply>,
  options: { onHead?: (request: OriginRequest, socket: net.Socket) => void } = {},
) {
  const requests: OriginRequest[] = [];
  const received: string[] = [];
  let connections = 0;
  let closed = 0;
  const origin = await startRawOrigin((socket) => {
    const connection = ++connections;
    received.push('');
    let buffer = '';
    let broken = false;
    let headSeen = false;
    let chain = Promise.resolve();
    socket.on('close', () => closed++);
    socket.on('end', () => {
      // The peer finished sending: finish our side once pending answers are written.
      void chain.then(() => {
        if (!socket.writableEnded) socket.end();
      });
    });
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      received[connection - 1] += text;
      if (broken) return;
      buffer += text;
      for (;;) {
        const headEnd = buffer.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const { firstLine, headers } = parseHead(buffer.slice(0, headEnd));
        const [method = '', target = ''] = firstLine.split(' ');
        const request: OriginRequest = { connection, line: firstLine, method, target, headers, body: '' };
        if (!headSeen) {
          headSeen = true;
          options.onHead?.(request, socket);
        }
        const rest = buffer.slice(headEnd + 4);
        const te = header(request, 'transfer-encoding');
        const cl = header(request, 'content-length');
        let used: number;
        if (te !== undefined) {
          if (te.toLowerCase() !== 'chunked' || cl !== undefined) return void (broken = true);
          const strict = strictDechunk(rest);
          if (strict === 'broken') return void (broken = true);
          if (strict === undefined) return;
          request.body = strict.body;
          used = strict.used;
        } else if (cl !== undefined) {
          if (!/^\d+$/.test(cl)) return void (broken = true);
          const length = Number(cl);
          if (rest.length < length) return;
          request.body = rest.slice(0, length);
          used = length;
        } else {
          used = 0;
        }
        buffer = rest.slice(used);
        headSeen = false;
        requests.push(request);
        const closeAfter = hasToken(request, 'connection', 'close');
        chain = chain.then(async () => {
          const reply = await respond(request, socket);
          const { data, end, delayMs } = typeof reply === 'string' ? { data: reply, end: false, delayMs: 0 } : reply;
          if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
          if (socket.destroyed || socket.writableEnded) return;
          if (end || closeAfter) socket.end(data);
          else socket.write(data);
        });
      }
    });
  });
  return {
    port: origin.port,
    close: origin.close,
    requests,
    /** The request lines parsed, in order. */
    get lines(): string[] {
      return requests.map((r) => r.line);
    },
    /** Every byte received, per connection. */
    received,
    get connections() {
      return connections;
    },
    get closed() {
      return closed;
    },
  };
}

/** Strict chunked parsing: 1*HEXDIG size, optional `;name[=value]` extensions, CRLF everywhere. */
function strictDechunk(text: string): { body: string; used: number } | undefined | 'broken' {
  let offset = 0;
  let body = '';
  for (;;) {
    const lineEnd = text.indexOf('\r\n', offset);
    if (lineEnd < 0) return text.length - offset > 1024 ? 'broken' : undefined;
    const line = text.slice(offset, lineEnd);
    const match = /^([0-9a-fA-F]{1,8})((?:;[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:=[^\r\n;]*)?)*)$/.exec(line);
    if (!match) return 'broken';
    const size = Number.parseInt(match[1]!, 16);
    offset = lineEnd + 2;
    if (size === 0) {
      for (;;) {
        const end = text.indexOf('\r\n', offset);
        if (end < 0) return undefined;
        const trailer = text.slice(offset, end);
        offset = end + 2;
        if (trailer === '') return { body, used: offset };
        if (trailer.includes('\n') || !trailer.includes(':')) return 'broken';
      }
    }
    if (text.length < offset + size + 2) return undefined;
    if (text.slice(offset + size, offset + size + 2) !== '\r\n') return 'broken';
    body += text.slice(offset, offset + size);
    offset += size + 2;
  }
}

/** `HTTP/1.1 200 OK` with a Content-Length body. */
export function ok(body: string, extraHeaders = ''): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n${extraHeaders}\r\n${body}`;
}

/**
 * A node:http origin that answers `<name>:<connection number>:<path>`, so each answer names the
 * origin connection it came on; counts connections accepted and closed. Keep-alive timeout is long
 * so the origin never closes an idle connection on its own during a test.
 */
export async function startNumberingOrigin(name = 'o', delayMs = 0) {
  const numbers = new WeakMap<net.Socket, number>();
  let counter = 0;
  let closed = 0;
  const origin = await startHttpOrigin((request: http.IncomingMessage, response: http.ServerResponse) => {
    request.resume();
    request.on('end', () => {
      const send = () => response.end(`${name}:${numbers.get(request.socket)}:${request.url}`);
      if (delayMs) setTimeout(send, delayMs);
      else send();
    });
  });
  origin.server.keepAliveTimeout = 60_000;
  origin.server.headersTimeout = 61_000;
  origin.server.on('connection', (socket: net.Socket) => {
    numbers.set(socket, ++counter);
    socket.once('close', () => closed++);
  });
  return {
    server: origin.server,
    port: origin.port,
    close: origin.close,
    get connections() {
      return origin.connections;
    },
    get closed() {
      return closed;
    },
  };
}

/** `GET http://127.0.0.1:port/path HTTP/1.1` with Host and optional extra header lines. */
export function get(port: number, path: string, extra = ''): string {
  return `GET http://127.0.0.1:${port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}\r\n`;
}

/** Resolves after `ms`; only for giving an origin time it would need anyway, never asserted on. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
