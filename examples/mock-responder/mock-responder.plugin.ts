import path from 'node:path';
import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { PluginBaseDir, PluginOptions, type PluginManifest, type ProxyEvent, type ProxyPlugin, type RequestHead } from 'proxyline';
import { loadRoutes, type Route } from './routes.js';

/** Options of `mock-responder`, validated (and defaulted) against the manifest's schema. */
export interface MockResponderOptions {
  /** The routes file (a JSON array), relative to the config file's folder. */
  routes: string;
}

/**
 * Answers the requests that match a route of its routes file itself — status, headers, body —
 * and lets every other request through to be forwarded as usual. A CONNECT never matches: the
 * proxy cannot see inside a tunnel, so it passes through.
 */
@injectable()
export class MockResponderPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'mock-responder',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        routes: { type: 'string', minLength: 1, default: 'routes.json', description: "The routes file, relative to the config file's folder." },
      },
    },
    after: ['head-parser'], // it needs parsed request heads
    before: ['upstream-dialer'], // nothing is dialled for a request it answers
  };
  readonly name = MockResponderPlugin.manifest.name;
  /** The routes in file order: the first that matches a request answers it. */
  readonly routes: readonly Route[];
  /** One function for every event of every connection: nothing is allocated per connection. */
  private readonly onEvent = (event: ProxyEvent) => {
    if (event.kind !== 'request-head' || event.exchange.answeredLocally) return;
    const route = this.match(event.exchange.request);
    if (!route) return;
    event.exchange.reply = route.reply; // the core sends it in this request's place, in order
    event.exchange.answeredBy = this.name; // logs, captures and metrics say who answered
  };

  constructor(@inject(PluginOptions) options: MockResponderOptions, @inject(PluginBaseDir) baseDir: string) {
    this.routes = loadRoutes(path.resolve(baseDir, options.routes));
  }

  inbound(): MonoTypeOperatorFunction<ProxyEvent> {
    // Every event passes on unchanged; a matched request head just carries its reply.
    return tap(this.onEvent);
  }

  /** The first route for `request` (as the client sent it), or undefined to forward it. */
  match(request: RequestHead): Route | undefined {
    const url = absoluteUrl(request.target);
    if (url === undefined || request.method === 'CONNECT') return undefined;
    // A HEAD is a GET without the body: a GET route answers it (the core leaves the body out).
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    return this.routes.find((route) => (route.method === undefined || route.method === method || route.method === request.method) && route.matches(url));
  }
}

/** The target in a normal form (host in lower case, no default port), or undefined when it is not an absolute http(s) URL. */
function absoluteUrl(target: string): string | undefined {
  if (!/^https?:\/\//i.test(target)) return undefined;
  try {
    return new URL(target).href;
  } catch {
    return undefined;
  }
}
