// The origin of the experiment: a small JSON API on 127.0.0.1 (node:http, nothing else).
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

/** A running origin: its port, and how to stop it. */
export interface Origin {
  /** The port it listens on, on 127.0.0.1. */
  port: number;
  /** Closes the listener and every connection still open. */
  close(): Promise<void>;
}

/** The body of `GET /items/<id>`: long enough (about 120 bytes) that a cut after 16 bytes always shows. */
function item(id: number): string {
  return JSON.stringify({ id, name: `item ${id}`, price: (id * 7) % 100, tags: ['research', id % 2 === 0 ? 'even' : 'odd'], inStock: id % 3 !== 0 });
}

/** Answers `GET /items/<id>` with JSON (Content-Length), `GET /health` with `{"ok":true}`, anything else 404. */
function handle(request: http.IncomingMessage, response: http.ServerResponse): void {
  request.resume();
  const match = /^\/items\/(\d{1,9})$/.exec(request.url ?? '');
  const body = match ? item(Number(match[1])) : request.url === '/health' ? '{"ok":true}' : undefined;
  if (request.method !== 'GET' || body === undefined) {
    response.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not found"}');
    return;
  }
  response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
}

/** Starts the origin on 127.0.0.1 (`port` 0: a free one). */
export async function startOrigin(port = 0): Promise<Origin> {
  const server = http.createServer(handle);
  server.on('clientError', (_error, socket) => socket.destroy());
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

// Run on its own (`node dist/examples/research/origin.js [port]`): listens until Ctrl-C.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const origin = await startOrigin(Number(process.argv[2] ?? 0));
  console.log(`origin listening on http://127.0.0.1:${origin.port}/items/1`);
  process.once('SIGINT', () => void origin.close());
}
