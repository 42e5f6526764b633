import http from 'node:http';
import type net from 'node:net';
import type { Registry } from 'prom-client';
import type { BoundAddress } from './core/transport.js';

/** Where the admin listener listens. */
export interface AdminServerOptions {
  /** Address to listen on (default 127.0.0.1: metrics are not for the whole network). */
  host?: string;
  /** Port to listen on; 0 takes a free one (default 9464). */
  port?: number;
}

/**
 * A small HTTP server beside the proxy (never on the proxy's port): `GET /metrics` serves a
 * prom-client registry in the Prometheus text format, `GET /healthz` answers `ok`, anything else
 * is 404 (405 for another method on those two paths).
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
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz') return send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      return send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    if (path === '/healthz') return send(response, 200, 'text/plain; charset=utf-8', 'ok\n');
    let body: string;
    try {
      body = await this.registry.metrics();
    } catch (error) {
      return send(response, 500, 'text/plain; charset=utf-8', `cannot collect metrics: ${(error as Error).message}\n`);
    }
    send(response, 200, this.registry.contentType, body);
  }
}

function send(response: http.ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

/** Builds an admin server (not listening yet) serving `registry`; see {@link AdminServer}. */
export function createAdminServer(registry: Registry, options: AdminServerOptions = {}): AdminServer {
  return new AdminServer(registry, options);
}
