import type { ProxyError } from '../errors.js';
import { BodyScanner } from './body-scanner.js';
import { HeadReader } from './head-reader.js';
import { badResponse, parseResponseHead, responseFraming, type ResponseFraming, type ResponseHead } from './response-framing.js';

/** What a {@link ResponseParser} reports. */
export type ResponseParserEvent =
  /** A valid head; `interim` for a 1xx other than 101 (another head follows for the same request). */
  | { kind: 'response-head'; head: ResponseHead; framing: ResponseFraming; interim: boolean }
  /** Body bytes (payload only when dechunking), or tunnel bytes: sub-arrays of the input, never copies. */
  | { kind: 'data'; chunk: Buffer }
  /** The end of the final response (for a tunnel: right after its head, before the tunnel data). */
  | { kind: 'message-end' };

/** What a {@link ResponseParser} needs to know about the request it reads the response of. */
export interface ResponseParserOptions {
  /** Largest response head accepted, in bytes. */
  maxHeaderBytes: number;
  /** Method of the request (HEAD and CONNECT change the framing). */
  requestMethod: string;
  /** Whether the request asked for an Upgrade (a 101 is refused otherwise). */
  upgradeRequested: boolean;
  /** Emit only the payload of a chunked body (no size lines, extensions or trailers). */
  dechunk: boolean;
}

type State =
  | 'head'
  /** Reading the final response's body, which `body` follows. */
  | 'body'
  | 'tunnel'
  | 'done';

/**
 * Turns the upstream's byte stream into the events of one response: any interim (1xx) heads, the
 * final head, its body `data`, and `message-end`. Throws ERR_PROXY_BAD_RESPONSE (502) on anything
 * malformed or ambiguous; a head is emitted only once it and its framing are known to be valid.
 */
export class ResponseParser {
  private state: State = 'head';
  private readonly head: HeadReader;
  private readonly body: BodyScanner;
  private anyByte = false;
  private anyHead = false;

  constructor(
    private options: ResponseParserOptions,
    private readonly emit: (event: ResponseParserEvent) => void,
  ) {
    this.head = new HeadReader(options.maxHeaderBytes, badResponse, () => this.tooLarge());
    this.body = new BodyScanner(options.maxHeaderBytes, badResponse);
  }

  /**
   * Starts over for the next response on a kept-alive connection (same `maxHeaderBytes`): one
   * parser per client connection instead of one per response.
   */
  reset(options: ResponseParserOptions): void {
    this.options = options;
    this.state = 'head';
    this.anyByte = false;
    this.anyHead = false;
    this.head.reset();
  }

  /** Whether the final response has ended (for a tunnel: its head has been read). */
  get done(): boolean {
    return this.state === 'done' || this.state === 'tunnel';
  }

  /** Whether any byte has arrived from the upstream. */
  get started(): boolean {
    return this.anyByte;
  }

  /**
   * Parses `chunk`; returns how many of its bytes belong to the response. Less than
   * `chunk.length` means the response ended inside `chunk` and the rest is extra (the connection
   * must not be reused). Once the response is done nothing more is consumed (0), except by a
   * tunnel, which consumes everything.
   */
  push(chunk: Buffer): number {
    if (chunk.length > 0) this.anyByte = true;
    let offset = 0;
    while (offset < chunk.length) {
      switch (this.state) {
        case 'done':
          return offset;
        case 'head':
          offset = this.readHead(chunk, offset);
          break;
        case 'tunnel':
          this.emitData(chunk, offset, chunk.length);
          return chunk.length;
        case 'body': {
          // De-chunking, each call covers one run of payload; the loop comes back for the next.
          const body = this.body;
          offset = body.scan(chunk, offset);
          this.emitData(chunk, body.emitStart, body.emitEnd);
          if (body.done) this.endMessage();
          break;
        }
      }
    }
    return offset;
  }

  /** The upstream sent EOF. Ends a close-delimited body; throws if a response was cut short. */
  end(): void {
    switch (this.state) {
      case 'body':
        if (!this.body.finish()) throw badResponse('upstream closed inside a response body');
        this.endMessage();
        return;
      case 'done':
      case 'tunnel':
        return;
      case 'head':
        if (!this.head.started && !this.anyHead) throw badResponse('upstream closed the connection before responding');
        throw badResponse('upstream closed inside a response head');
    }
  }

  private emitData(chunk: Buffer, start: number, end: number): void {
    if (end > start) this.emit({ kind: 'data', chunk: start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end) });
  }

  /** Reads head bytes; returns the offset in `chunk` where the head's bytes ended. */
  private readHead(chunk: Buffer, offset: number): number {
    const read = this.head.read(chunk, offset);
    if (!read) return chunk.length;
    const head = parseResponseHead(read.text);
    const { requestMethod, upgradeRequested } = this.options;
    const framing = responseFraming(head, requestMethod, upgradeRequested);
    const interim = head.status < 200 && head.status !== 101;
    this.anyHead = true;
    this.emit({ kind: 'response-head', head, framing, interim });
    if (!interim) {
      switch (framing.kind) {
        case 'tunnel':
          this.emit({ kind: 'message-end' });
          this.state = 'tunnel';
          break;
        case 'none':
          this.endMessage();
          break;
        default:
          this.body.start(framing, this.options.dechunk);
          this.state = 'body';
      }
    }
    return read.next;
  }

  private endMessage(): void {
    this.state = 'done';
    this.emit({ kind: 'message-end' });
  }

  private tooLarge(): ProxyError {
    return badResponse(`response head larger than ${this.options.maxHeaderBytes} bytes`);
  }
}
