import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { aborted, badRequest, ProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { RequestParser } from '../core/http/request-parser.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';
import { BodyWatch, type WatchedBody } from './body-watch.js';

/** Options of `head-parser`. */
export interface HeadParserOptions {
  /** Largest request head accepted, in bytes; larger heads are answered 431. */
  maxHeaderBytes: number;
  /**
   * Time the client has to send each request head, in ms (0: no limit); then 408. The first is
   * timed from accept (a connection that sends nothing is bounded too), each later one from its
   * first byte (the idle time before it is `keepAliveTimeoutMs`'s business).
   */
  headersTimeoutMs: number;
  /** How long a kept-alive client connection may stay idle between requests, in ms (0: no limit). */
  keepAliveTimeoutMs: number;
  /** Longest pause between two bytes of a request body, in ms (0: no limit); then 408. */
  bodyTimeoutMs: number;
  /**
   * Lowest average rate of a request body, in bytes/s from its start (0: no minimum); checked once
   * `bodyGracePeriodMs` passed, then 408 (Kestrel's MinRequestBodyDataRate): a client trickling a
   * byte now and then never pauses long enough for `bodyTimeoutMs`.
   */
  minBodyBytesPerSecond: number;
  /** Time from a request body's start before `minBodyBytesPerSecond` is checked, in ms. */
  bodyGracePeriodMs: number;
}

/**
 * Parses the client's bytes into request events (head, body data, message end), strictly:
 * malformed or ambiguous requests are answered 400 before anything reaches an upstream. Bounds
 * the client's pace too: each head, each body (gaps and rate) and the idle time between requests.
 */
@injectable()
export class HeadParserPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'head-parser',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxHeaderBytes: { type: 'integer', minimum: 1024, default: 65536, description: 'Largest request head in bytes (431 above).' },
        headersTimeoutMs: {
          type: 'integer',
          minimum: 0,
          default: 30000,
          description: 'Time to send each request head, ms (the first from accept, later ones from their first byte); 0 disables (408).',
        },
        keepAliveTimeoutMs: { type: 'integer', minimum: 0, default: 5000, description: 'Idle time allowed between requests, ms; 0 disables.' },
        bodyTimeoutMs: { type: 'integer', minimum: 0, default: 30000, description: 'Longest pause between two bytes of a request body, ms; 0 disables (408).' },
        minBodyBytesPerSecond: {
          type: 'integer',
          minimum: 0,
          default: 240,
          description: 'Lowest average request body rate in bytes/s, checked after bodyGracePeriodMs; 0 disables (408).',
        },
        bodyGracePeriodMs: { type: 'integer', minimum: 0, default: 5000, description: 'Time from the start of a request body before its rate is checked, ms.' },
      },
    },
  };
  readonly name = HeadParserPlugin.manifest.name;

  constructor(
    /** Its validated options; createProxy reads `headersTimeoutMs` to bound a TLS listener's handshakes too. */
    @inject(PluginOptions) readonly options: Readonly<HeadParserOptions>,
  ) {}

  /** The head deadline, in ms (0: none): a listener with a handshake of its own (SOCKS5) bounds it alike. */
  get headersTimeoutMs(): number {
    return this.options.headersTimeoutMs;
  }

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new HeadParserStage(downstream, ctx, this.options));
  }
}

class HeadParserStage extends Stage implements WatchedBody {
  private readonly parser: RequestParser;
  /** One per connection: bounds the head in progress; refreshed per head, never re-created. */
  private headTimer?: NodeJS.Timeout;
  /** Request heads parsed; the head timer compares it to see whether its head arrived. */
  private heads = 0;
  /** `heads` when the head timer was armed: it bounds the head that follows that many. */
  private headsWhenArmed = 0;
  /** One per connection, refreshed after each request rather than cleared and created anew. */
  private idleTimer?: NodeJS.Timeout;
  /** Data events seen; the idle timer compares it instead of being re-armed per chunk. */
  private activity = 0;
  /** `activity` when the idle timer was last armed. */
  private activityWhenArmed = 0;
  /** Bytes of the current request's body so far; the body watch reads it per tick. */
  bodyBytes = 0;
  /** Created on the first body that spans reads (most connections never have one). */
  private bodyWatch?: BodyWatch;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
    private readonly options: HeadParserOptions,
  ) {
    super(downstream);
    this.parser = new RequestParser({ maxHeaderBytes: options.maxHeaderBytes, onUpgradeWait: (exchange) => this.awaitUpgrade(exchange) }, (event) =>
      this.parsed(event),
    );
    // The first head is timed from accept: a connection that sends nothing is bounded too.
    if (options.headersTimeoutMs > 0) this.headTimer = setTimeout(() => this.headTimeout(), options.headersTimeoutMs);
  }

  protected onEvent(event: ProxyEvent): void {
    // In a tunnel the event goes on as it came: no parsing, and no second event per chunk.
    if (event.kind !== 'data' || this.parser.isTunnel) return this.emit(event);
    this.activity++;
    this.parser.push(event.chunk);
    this.afterRead();
  }

  protected override onComplete(): void {
    if (this.parser.inHead) this.fail(badRequest('connection closed inside a request head'));
    else if (this.parser.inBody) this.fail(aborted('client closed the connection inside a request body'));
    else this.finish();
  }

  protected override onFinalize(): void {
    clearTimeout(this.headTimer);
    clearTimeout(this.idleTimer);
    this.bodyWatch?.dispose();
  }

  /** The body watch found the client too slow. */
  bodyFailed(error: ProxyError): void {
    this.fail(error);
  }

  private parsed(event: ProxyEvent): void {
    if (event.kind === 'data') this.bodyBytes += event.chunk.length;
    else if (event.kind === 'request-head') {
      this.heads++; // the head timer, if armed for this head, now rests: no clear per request
      this.bodyBytes = 0;
      // Kept exact per event, not only after the read: a drain deciding this request's answer at
      // once (in place) must not take the half head read before for a request still arriving.
      this.ctx.receiving = event.exchange.bodyLength !== 0;
    } else if (event.kind === 'message-end') {
      this.ctx.receiving = false;
      if (this.bodyWatch?.watching) this.bodyWatch.stop();
      if (event.exchange.isConnect || event.exchange.upgradeRequested) this.stopIdleTimer();
      else this.armIdleTimer();
    }
    this.emit(event);
  }

  /**
   * After bytes were parsed: a head or body left unfinished starts being timed. A message whose
   * head and body came in one read (the common case) costs two checks here and no clock read.
   */
  private afterRead(): void {
    if (this.closed) return;
    this.ctx.receiving = this.parser.inHead || this.parser.inBody;
    if (this.parser.inBody) {
      if (!this.bodyWatch?.watching) this.watchBody();
    } else if (this.parser.inHead && this.headsWhenArmed !== this.heads) this.armHeadTimer();
  }

  /** A later head started (its first byte came): it gets `headersTimeoutMs` from now. */
  private armHeadTimer(): void {
    const { headersTimeoutMs } = this.options;
    if (headersTimeoutMs === 0) return;
    this.headsWhenArmed = this.heads;
    // refresh() also re-arms a timer that already fired.
    if (this.headTimer) this.headTimer.refresh();
    else this.headTimer = setTimeout(() => this.headTimeout(), headersTimeoutMs);
  }

  private headTimeout(): void {
    if (this.heads !== this.headsWhenArmed) return; // its head arrived: rest until the next one starts
    // While the proxy holds the client (pipelining, backpressure) its head cannot arrive: wait again.
    if (this.ctx.inboundFlow.paused) return void this.headTimer!.refresh();
    this.fail(new ProxyError('ERR_PROXY_HEADERS_TIMEOUT', `request head not complete within ${this.options.headersTimeoutMs} ms`));
  }

  /** A body goes on past this read: watch its pace until its message ends. */
  private watchBody(): void {
    if (!BodyWatch.needed(this.options)) return;
    this.bodyWatch ??= new BodyWatch(this.options, this, this.ctx.inboundFlow);
    this.bodyWatch.start(this.parser.current!);
  }

  /** Between requests: close a connection nobody uses, but never while a response is due. */
  private armIdleTimer(): void {
    const { keepAliveTimeoutMs } = this.options;
    if (keepAliveTimeoutMs === 0) return;
    this.activityWhenArmed = this.activity;
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => this.idleTimeout(), keepAliveTimeoutMs);
    this.idleTimer.unref();
  }

  /** A cleared timer cannot be refreshed: the next arming creates a new one. */
  private stopIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private idleTimeout(): void {
    // Bytes came, or a response is still due: not idle; wait a whole period again.
    if (this.activity !== this.activityWhenArmed || this.ctx.inFlight > 0) return this.armIdleTimer();
    this.finish(); // as if the client had sent FIN: responses due are sent, then the connection closes
  }

  /**
   * After an upgrade request or a CONNECT the client is held until the response decides (101 or
   * the CONNECT's 200, or a refusal). The held bytes go on a microtask later: the decision may
   * come while the request's own head or end is still on its way down the chain, and its tunnel
   * bytes must not overtake them.
   */
  private awaitUpgrade(exchange: Exchange): void {
    this.ctx.inboundFlow.hold('upgrade');
    exchange.onUpgradeDecided((upgraded) => {
      queueMicrotask(() => {
        if (this.closed) return;
        try {
          this.parser.resolveUpgrade(upgraded);
          this.afterRead(); // the bytes held may hold the start of the next head
        } catch (error) {
          this.fail(error);
        }
        // Refused: the connection stays HTTP, and idles until the next request.
        if (!upgraded) this.armIdleTimer();
        this.ctx.inboundFlow.release('upgrade');
      });
    });
  }
}
