// The origins, in their own process: a raw byte source/sink for tunnel throughput, a node:http
// server with a 1 KiB body, a raw server that holds idle tunnels open, and for the keep-alive
// runs a second node:http server (keep-alive, 1 KiB body) that counts the TCP connections it
// accepts, with a control port that answers that count (one line, then close).
import http from 'node:http';
import net from 'node:net';
import { pump } from './pump.js';

/** Throughput protocol: 'U' + u64 length: the origin reads that many bytes then writes 'K';
 *  'D' + u64 length: the origin writes that many bytes (64 KiB chunks) then ends. */
const HEADER_BYTES = 9;

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function throughputOrigin(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => {});
    let header = Buffer.alloc(0);
    let remaining = -1;
    socket.on('data', (chunk: Buffer) => {
      if (remaining < 0) {
        header = Buffer.concat([header, chunk]);
        if (header.length < HEADER_BYTES) return;
        const length = Number(header.readBigUInt64BE(1));
        if (header[0] === 0x44 /* D */) return pump(socket, length, () => socket.end());
        remaining = length;
        chunk = header.subarray(HEADER_BYTES);
      }
      remaining -= chunk.length;
      if (remaining <= 0) socket.end('K');
    });
  });
}

const BODY = Buffer.alloc(1024, 0x62);
function httpOrigin(): http.Server {
  return http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': BODY.length });
    res.end(BODY);
  });
}

/** Keep-alive origin: idle connections are kept for 60 s, no limit of requests per connection. */
let accepted = 0;
function keepAliveOrigin(): http.Server {
  const server = httpOrigin();
  server.keepAliveTimeout = 60_000;
  server.maxRequestsPerSocket = 0;
  server.on('connection', () => accepted++);
  return server;
}

function countOrigin(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => {});
    socket.end(`${accepted}\n`);
  });
}

function idleOrigin(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => {});
    socket.resume();
  });
}

const [throughput, web, idle, keepAlive, count] = await Promise.all(
  [throughputOrigin(), httpOrigin(), idleOrigin(), keepAliveOrigin(), countOrigin()].map(listen),
);
process.stdout.write(`origins listening ${JSON.stringify({ throughput, http: web, idle, keepAlive, count })}\n`);
