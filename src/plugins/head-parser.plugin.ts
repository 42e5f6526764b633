import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { aborted, badRequest, ProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import { RequestParser } from '../core/http/request-parser.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';

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
    const { maxHeaderBytes, headersTimeoutMs } = this.options;
    return (source) =>
      new Observable<ProxyEvent>((subscriber) => {
        let timer: NodeJS.Timeout | undefined;
        const parser = new RequestParser({ maxHeaderBytes }, (event) => {
          if (timer && event.kind === 'request-head') {
            clearTimeout(timer);
            timer = undefined;
          }
          subscriber.next(event);
        });
        if (headersTimeoutMs > 0) {
          timer = setTimeout(() => {
            subscriber.error(new ProxyError('ERR_PROXY_HEADERS_TIMEOUT', `no request head within ${headersTimeoutMs} ms`));
          }, headersTimeoutMs);
        }
        const subscription = source.subscribe({
          next(event) {
            if (event.kind !== 'data') return subscriber.next(event);
            try {
              parser.push(event.chunk);
            } catch (error) {
              subscriber.error(error);
            }
          },
          error: (error) => subscriber.error(error),
          complete() {
            if (parser.inHead) subscriber.error(badRequest('connection closed inside a request head'));
            else if (parser.inBody) subscriber.error(aborted('client closed the connection inside a request body'));
            else subscriber.complete();
          },
        });
        return () => {
          clearTimeout(timer);
          subscription.unsubscribe();
        };
      });
  }
}
