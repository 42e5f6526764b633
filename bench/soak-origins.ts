// The soak's origins, in the soak process: one request handler behind node:http and node:https
// (bodies cut from PATTERN, some slow, some dribbled, an echo and a sink for request bodies),
// and a raw TCP echo for CONNECT tunnels. Each counts its open connections, so the report can
// say whether the proxy let go of its upstream sockets.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { writePattern, type OriginPorts } from './soak-shared.js';

/** Test certificate for localhost and 127.0.0.1 (self-signed; clients pass it as `ca`). */
export function loadTls(root: string): { cert: Buffer; key: Buffer } {
  return {
    cert: readFileSync(path.join(root, 'test/fixtures/localhost-cert.pem')),
    key: readFileSync(path.join(root, 'test/fixtures/localhost-key.pem')),
  };
}

/** Running origins. */
export interface Origins {
  ports: OriginPorts;
  /** Connections open at the origins right now (upstream sockets the proxy holds). */
  openConnections(): number;
  close(): Promise<void>;
}

const number = (url: URL, name: string, fallback = 0) => Number(url.searchParams.get(name) ?? fallback);

/**
 * GET|HEAD /bytes?size&offset[&delay][&chunks&gap]: 200 with `size` pattern bytes from `offset`,
 *   after `delay` ms; with `chunks` > 1, chunked and written in that many pieces `gap` ms apart.
 * GET /status/204: 204, no body.
 * POST /echo?offset: streams the body back (Content-Length when the request had one).
 * POST /sink: reads the whole body, then answers its length as text.
 */
function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.on('error', () => {});
  res.on('error', () => {});
  const url = new URL(req.url ?? '/', 'http://origin');
  if (url.pathname === '/bytes') {
    const size = number(url, 'size');
    const offset = number(url, 'offset');
    const chunks = number(url, 'chunks', 1);
    const timer = setTimeout(
      () => {
        if (req.method === 'HEAD' || chunks <= 1) {
          res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': size });
          if (req.method === 'HEAD') return void res.end();
          return writePattern(res, offset, size, () => res.end());
        }
        dribble(res, offset, size, chunks, number(url, 'gap'));
      },
      number(url, 'delay'),
    );
    res.once('close', () => clearTimeout(timer));
  } else if (url.pathname === '/status/204') {
    res.writeHead(204).end();
  } else if (url.pathname === '/echo' && req.method === 'POST') {
    const length = req.headers['content-length'];
    res.writeHead(
      200,
      length === undefined ? { 'Content-Type': 'application/octet-stream' } : { 'Content-Type': 'application/octet-stream', 'Content-Length': length },
    );
    req.pipe(res);
  } else if (url.pathname === '/sink' && req.method === 'POST') {
    let received = 0;
    req.on('data', (chunk: Buffer) => (received += chunk.length));
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(String(received)));
  } else {
    res.writeHead(404).end();
  }
}

/** A chunked response written in `chunks` pieces, `gapMs` apart. */
function dribble(res: http.ServerResponse, offset: number, size: number, chunks: number, gapMs: number): void {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
  const piece = Math.ceil(size / chunks);
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  res.once('close', () => clearTimeout(timer));
  const next = (): void => {
    const n = Math.min(piece, size - sent);
    if (n <= 0) return void res.end();
    writePattern(res, offset + sent, n, () => {
      sent += n;
      timer = setTimeout(next, gapMs);
    });
  };
  next();
}

/** Counts the open connections of a server. */
function counted<T extends net.Server>(server: T, open: Set<net.Socket>): T {
  server.on('connection', (socket: net.Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return server;
}

function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  return once(server, 'listening').then(() => (server.address() as net.AddressInfo).port);
}

/** Starts the three origins on 127.0.0.1. */
export async function startOrigins(tls: { cert: Buffer; key: Buffer }): Promise<Origins> {
  const open = new Set<net.Socket>();
  const web = counted(http.createServer(handle), open);
  const secure = counted(https.createServer(tls, handle), open);
  for (const server of [web, secure]) {
    // Longer than the proxy's upstream pool keeps an idle connection, so the proxy closes first.
    server.keepAliveTimeout = 10_000;
    server.on('clientError', (_error, socket) => socket.destroy());
  }
  secure.on('tlsClientError', () => {});
  // Echo: what comes in goes back; the client's FIN is answered with ours.
  const echo = counted(
    net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    }),
    open,
  );
  const [httpPort, httpsPort, echoPort] = await Promise.all([web, secure, echo].map(listen));
  return {
    ports: { http: httpPort!, https: httpsPort!, echo: echoPort! },
    openConnections: () => open.size,
    close: async () => {
      for (const socket of open) socket.destroy();
      await Promise.all([web, secure, echo].map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
}
