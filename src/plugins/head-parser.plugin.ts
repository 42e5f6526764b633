import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { aborted, badRequest, ProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import { RequestParser } from '../core/http/request-parser.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';

/** Options of `head-parser`. */
export interface HeadParserOptions {
  /** Largest request head accepted, in bytes; larger heads are answered 431. */
  maxHeaderBytes: number;
  /** Time the client has to send its first request head, in ms (0: no limit); then 408. */
  headersTimeoutMs: number;
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
      },
    },
  };
  readonly name = HeadParserPlugin.manifest.name;

  constructor(@inject(PluginOptions) private readonly options: HeadParserOptions) {}

  inbound(_ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new HeadParserStage(downstream, this.options));
  }
}

class HeadParserStage extends Stage {
  private readonly parser: RequestParser;
  private timer?: NodeJS.Timeout;

  constructor(downstream: Subscriber<ProxyEvent>, options: HeadParserOptions) {
    super(downstream);
    this.parser = new RequestParser(options, (event) => this.parsed(event));
    const { headersTimeoutMs } = options;
    if (headersTimeoutMs > 0) {
      this.timer = setTimeout(() => {
        this.fail(new ProxyError('ERR_PROXY_HEADERS_TIMEOUT', `no request head within ${headersTimeoutMs} ms`));
      }, headersTimeoutMs);
    }
  }

  protected onEvent(event: ProxyEvent): void {
    if (event.kind === 'data') this.parser.push(event.chunk);
    else this.emit(event);
  }

  protected override onComplete(): void {
    if (this.parser.inHead) this.fail(badRequest('connection closed inside a request head'));
    else if (this.parser.inBody) this.fail(aborted('client closed the connection inside a request body'));
    else this.finish();
  }

  protected override onFinalize(): void {
    clearTimeout(this.timer);
  }

  private parsed(event: ProxyEvent): void {
    if (this.timer && event.kind === 'request-head') {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.emit(event);
  }
}
