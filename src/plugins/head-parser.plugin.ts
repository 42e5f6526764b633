import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { aborted, badRequest, ProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { RequestParser } from '../core/http/request-parser.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';

/** Options of `head-parser`. */
export interface HeadParserOptions {
  /** Largest request head accepted, in bytes; larger heads are answered 431. */
  maxHeaderBytes: number;
  /** Time the client has to send its first request head, in ms (0: no limit); then 408. */
  headersTimeoutMs: number;
  /** How long a kept-alive client connection may stay idle between requests, in ms (0: no limit). */
  keepAliveTimeoutMs: number;
}

/**
 * Parses the client's bytes into request events (head, body data, message end), strictly:
 * malformed or ambiguous requests are answered 400 before anything reaches an upstream.
 */
@injectable()
export class HeadParserPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'head-parser',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxHeaderBytes: { type: 'integer', minimum: 1024, default: 65536, description: 'Largest request head in bytes (431 above).' },
        headersTimeoutMs: { type: 'integer', minimum: 0, default: 30000, description: 'Time to send the first request head, ms; 0 disables (408).' },
        keepAliveTimeoutMs: { type: 'integer', minimum: 0, default: 5000, description: 'Idle time allowed between requests, ms; 0 disables.' },
      },
    },
  };
  readonly name = HeadParserPlugin.manifest.name;

  constructor(@inject(PluginOptions) private readonly options: HeadParserOptions) {}

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new HeadParserStage(downstream, ctx, this.options));
  }
}

class HeadParserStage extends Stage {
  private readonly parser: RequestParser;
  /** Until the first request head: the headers timeout. */
  private timer?: NodeJS.Timeout;
  /** One per connection, refreshed after each request rather than cleared and created anew. */
  private idleTimer?: NodeJS.Timeout;
  /** Data events seen; the idle timer compares it instead of being re-armed per chunk. */
  private activity = 0;
  /** `activity` when the idle timer was last armed. */
  private activityWhenArmed = 0;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly ctx: ConnectionContext,
    private readonly options: HeadParserOptions,
  ) {
    super(downstream);
    this.parser = new RequestParser({ maxHeaderBytes: options.maxHeaderBytes, onUpgradeWait: (exchange) => this.awaitUpgrade(exchange) }, (event) =>
      this.parsed(event),
    );
    const { headersTimeoutMs } = options;
    if (headersTimeoutMs > 0) {
      this.timer = setTimeout(() => {
        this.fail(new ProxyError('ERR_PROXY_HEADERS_TIMEOUT', `no request head within ${headersTimeoutMs} ms`));
      }, headersTimeoutMs);
    }
  }

  protected onEvent(event: ProxyEvent): void {
    // In a tunnel the event goes on as it came: no parsing, and no second event per chunk.
    if (event.kind !== 'data' || this.parser.isTunnel) return this.emit(event);
    this.activity++;
    this.parser.push(event.chunk);
    this.ctx.receiving = this.parser.inHead || this.parser.inBody;
  }

  protected override onComplete(): void {
    if (this.parser.inHead) this.fail(badRequest('connection closed inside a request head'));
    else if (this.parser.inBody) this.fail(aborted('client closed the connection inside a request body'));
    else this.finish();
  }

  protected override onFinalize(): void {
    clearTimeout(this.timer);
    clearTimeout(this.idleTimer);
  }

  private parsed(event: ProxyEvent): void {
    if (event.kind === 'request-head') {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    } else if (event.kind === 'message-end') {
      if (event.exchange.isConnect || event.exchange.upgradeRequested) this.stopIdleTimer();
      else this.armIdleTimer();
    }
    this.emit(event);
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
