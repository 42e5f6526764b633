import http from 'node:http';
import type net from 'node:net';
import type { Registry } from 'prom-client';
import type { AdminHandler, AdminResponse, AdminRoutes } from './core/admin-routes.js';
import type { BoundAddress } from './core/transport.js';

/** The largest request body a plugin's admin route is given (a fault list, say); larger is 413. */
const MAX_BODY_BYTES = 1024 * 1024;

/** Where the admin listener listens. */
export interface AdminServerOptions {
  /** Address to listen on (default 127.0.0.1: metrics are not for the whole network). */
  host?: string;
  /** Port to listen on; 0 takes a free one (default 9464). */
  port?: number;
  /** Routes plugins registered (the `faults` plugin's `/faults`); absent: only the listener's own. */
  routes?: AdminRoutes;
  /**
   * What `GET /healthz` says: text lines after its `ok` (the CLI's reload count and last reload
   * error; still 200), or a whole JSON answer (the cluster primary's workers up). Absent: `200 ok`.
   */
  health?: () => string | AdminResponse;
}

/**
 * A small HTTP server beside the proxy (never on the proxy's port): `GET /metrics` serves a
 * prom-client registry in the Prometheus text format, `GET /healthz` answers `ok` (and the lines of
 * {@link AdminServerOptions.health}), the paths of
 * {@link AdminServerOptions.routes} go to the plugin that registered them (JSON in and out), and
 * anything else is 404 (405 for another method on `/metrics` and `/healthz`).
 */
export class AdminServer {
  private readonly server: http.Server;
  private bound?: BoundAddress;

  constructor(
    private readonly registry: Registry,
    private readonly options: AdminServerOptions = {},
  ) {
    this.server = http.createServer((request, response) => {
      this.handle(request, response).catch(() => response.destroy());
    });
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<BoundAddress> {
    const { server } = this;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 9464, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        const address = server.address() as net.AddressInfo;
        this.bound = { host: address.address, port: address.port };
        resolve(this.bound);
      });
    });
  }

  /** The bound address, once listening. */
  address(): BoundAddress | undefined {
    return this.bound;
  }

  /** Stops listening and closes every connection (a scrape in progress is cut off). */
  close(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0]!;
    if (path !== '/metrics' && path !== '/healthz') {
      const handler = this.options.routes?.find(path);
      if (!handler) return send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
      return route(handler, request, response, path);
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      return send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    if (path === '/healthz') {
      const answer = this.options.health?.() ?? '';
      if (typeof answer !== 'string') return sendJson(response, answer.status, answer.json);
      return send(response, 200, 'text/plain; charset=utf-8', `ok\n${answer}`);
    }
    let body: string;
    try {
      body = await this.registry.metrics();
    } catch (error) {
      return send(response, 500, 'text/plain; charset=utf-8', `cannot collect metrics: ${(error as Error).message}\n`);
    }
    send(response, 200, this.registry.contentType, body);
  }
}

/** Reads the body, hands the request to a plugin's handler, and sends what it answers as JSON. */
async function route(handler: AdminHandler, request: http.IncomingMessage, response: http.ServerResponse, path: string): Promise<void> {
  const body = await readBody(request);
  if (body === undefined) {
    response.setHeader('Connection', 'close');
    return sendJson(response, 413, { error: `body: expected at most ${MAX_BODY_BYTES} bytes` });
  }
  let answer;
  try {
    answer = await handler({ method: request.method ?? 'GET', path, body });
  } catch (error) {
    return sendJson(response, 500, { error: `${path}: ${(error as Error).message}` });
  }
  for (const [name, value] of Object.entries(answer.headers ?? {})) response.setHeader(name, value);
  sendJson(response, answer.status, answer.json);
}

/** The request body as text, or undefined when it is larger than {@link MAX_BODY_BYTES} (the rest is not read). */
function readBody(request: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        request.pause();
        return resolve(undefined);
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function sendJson(response: http.ServerResponse, status: number, json: unknown): void {
  if (json === undefined) {
    response.writeHead(status, { 'Content-Length': 0 });
    return void response.end();
  }
  send(response, status, 'application/json; charset=utf-8', JSON.stringify(json, null, 2) + '\n');
}

function send(response: http.ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

/** Builds an admin server (not listening yet) serving `registry`; see {@link AdminServer}. */
export function createAdminServer(registry: Registry, options: AdminServerOptions = {}): AdminServer {
  return new AdminServer(registry, options);
}
