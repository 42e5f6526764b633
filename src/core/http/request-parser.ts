import { ProxyError, badRequest } from '../errors.js';
import { dataEvent, messageEndEvent, requestHeadEvent, type ProxyEvent } from '../events.js';
import { Exchange } from '../exchange.js';
import { BodyScanner } from './body-scanner.js';
import { requestFraming } from './framing.js';
import { parseRequestHead } from './head-parser.js';
import { HeadReader } from './head-reader.js';

type State =
  | { kind: 'head' }
  /** Reading a body, which `body` follows. */
  | { kind: 'body' }
  /** After an upgrade request: bytes wait until the response says whether protocols switched. */
  | { kind: 'await-upgrade'; held: Buffer[] }
  /** After a request that closes the connection: nothing more is a request (RFC 9112 §9.6). */
  | { kind: 'discard' }
  | { kind: 'tunnel' };

// The states without data are shared: nothing is allocated per message for them.
const HEAD: State = { kind: 'head' };
const BODY: State = { kind: 'body' };
const DISCARD: State = { kind: 'discard' };
const TUNNEL: State = { kind: 'tunnel' };

/** Limits of a {@link RequestParser}. */
export interface RequestParserOptions {
  /** Largest request head accepted, in bytes, before 431. */
  maxHeaderBytes: number;
  /** Called when an upgrade request or a CONNECT has ended and parsing waits for `resolveUpgrade`. */
  onUpgradeWait?(exchange: Exchange): void;
}

/**
 * Turns the client's byte stream into request events: `request-head`, body `data` (sub-arrays
 * of the chunks read, never copies), `message-end`, then the next request. A CONNECT head is
 * followed at once by `message-end`; once the CONNECT succeeds every later byte is tunnel `data`.
 * Throws a ProxyError on anything malformed; a message's head is emitted only once its head and
 * framing are known to be valid.
 */
export class RequestParser {
  private state: State = HEAD;
  private readonly head: HeadReader;
  private readonly body: BodyScanner;
  private exchange?: Exchange;
  private exchanges = 0;

  constructor(
    private readonly options: RequestParserOptions,
    private readonly emit: (event: ProxyEvent) => void,
  ) {
    this.head = new HeadReader(options.maxHeaderBytes, badRequest, () => this.tooLarge());
    this.body = new BodyScanner(options.maxHeaderBytes);
  }

  /** True while part of a request head has arrived but not all of it. */
  get inHead(): boolean {
    return this.state.kind === 'head' && this.head.started;
  }

  /** The exchange of the request being read (or the last one read); undefined before the first head. */
  get current(): Exchange | undefined {
    return this.exchange;
  }

  /** True between a head and its message end (a body is being read). */
  get inBody(): boolean {
    return this.state.kind === 'body';
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const state = this.state;
      switch (state.kind) {
        case 'head':
          offset = this.readHead(chunk, offset);
          break;
        case 'tunnel':
          this.emit(dataEvent(offset === 0 ? chunk : chunk.subarray(offset)));
          return;
        case 'await-upgrade':
          state.held.push(offset === 0 ? chunk : chunk.subarray(offset));
          return;
        case 'discard':
          return;
        case 'body': {
          const body = this.body;
          offset = body.scan(chunk, offset);
          this.emit(dataEvent(chunk.subarray(body.emitStart, body.emitEnd)));
          if (body.done) this.endMessage();
          break;
        }
      }
    }
  }

  /** Reads head bytes; returns the offset in `chunk` where the head's bytes ended. */
  private readHead(chunk: Buffer, offset: number): number {
    const read = this.head.read(chunk, offset);
    if (!read) return chunk.length;
    const head = parseRequestHead(read.text);
    const framing = requestFraming(head);
    const exchange = new Exchange(++this.exchanges, head);
    this.exchange = exchange;
    if (framing.kind === 'tunnel') {
      // A CONNECT request has no content: its message ends here. The bytes after it are tunnel
      // bytes once the CONNECT succeeds, the next request if it is refused (a 407 before the
      // retry with credentials): held until the response decides. The wait starts before the
      // head goes out, since a plugin may refuse it while the head is on its way.
      this.awaitSwitch(exchange);
      this.emit(requestHeadEvent(head, exchange));
      this.emit(messageEndEvent(exchange));
      return read.next;
    }
    if (framing.kind === 'length') exchange.bodyLength = framing.length;
    else if (framing.kind === 'chunked') exchange.bodyLength = -1;
    this.emit(requestHeadEvent(head, exchange));
    if (framing.kind === 'none') {
      this.endMessage();
    } else {
      this.body.start(framing);
      this.state = BODY;
    }
    return read.next;
  }

  private endMessage(): void {
    const exchange = this.exchange!;
    if (exchange.upgradeRequested) {
      this.awaitSwitch(exchange);
    } else {
      this.state = exchange.closeClient ? DISCARD : HEAD;
    }
    this.emit(messageEndEvent(exchange));
  }

  /** Holds later bytes until `resolveUpgrade` says whether the connection became a tunnel. */
  private awaitSwitch(exchange: Exchange): void {
    this.state = { kind: 'await-upgrade', held: [] };
    this.options.onUpgradeWait?.(exchange);
  }

  /** Ends the wait after an upgrade request or a CONNECT: tunnel bytes if it switched, else more requests. */
  resolveUpgrade(upgraded: boolean): void {
    if (this.state.kind !== 'await-upgrade') return;
    const { held } = this.state;
    this.state = upgraded ? TUNNEL : this.exchange!.closeClient ? DISCARD : HEAD;
    for (const chunk of held) this.push(chunk);
  }

  /** True once every byte is tunnel data (after CONNECT, or a 101). */
  get isTunnel(): boolean {
    return this.state.kind === 'tunnel';
  }

  /** True while bytes are held waiting for an upgrade decision. */
  get awaitingUpgrade(): boolean {
    return this.state.kind === 'await-upgrade';
  }

  private tooLarge(): ProxyError {
    return new ProxyError('ERR_PROXY_HEADERS_TOO_LARGE', `request head larger than ${this.options.maxHeaderBytes} bytes`);
  }
}
