// Shared helpers for tests on real loopback sockets. Everything they open, they close.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { createProxy, type ProxyOptions } from '../../src/proxy.js';
import { SilentLogger, Logger } from '../../src/core/logger.js';
import type { ProxyServer } from '../../src/core/server.js';
import { container } from 'tsyringe';

/** The repository root: ava runs from it, whatever folder the compiled tests are in. */
export const ROOT = process.cwd();
/** Test certificate for localhost, 127.0.0.1 and ::1 (self-signed; clients pass it as `ca`). */
export const TLS = {
  cert: readFileSync(path.join(ROOT, 'test/fixtures/localhost-cert.pem')),
  key: readFileSync(path.join(ROOT, 'test/fixtures/localhost-key.pem')),
};

/** A proxy on 127.0.0.1:0 with a silent logger unless the options bring their own container. */
export async function startProxy(options: ProxyOptions = {}): Promise<{ server: ProxyServer; port: number; close: () => Promise<void> }> {
  const child = container.createChildContainer();
  child.registerInstance(Logger, new SilentLogger());
  const server = await createProxy({ container: child, host: '127.0.0.1', port: 0, gracePeriodMs: 0, ...options });
  const { port } = await server.listen();
  return { server, port, close: () => server.close(0) };
}

/** A node:http origin on 127.0.0.1:0 that counts accepted connections. */
export async function startHttpOrigin(handler: http.RequestListener) {
  const server = http.createServer(handler);
  let connections = 0;
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    close: () => closeServer(server),
  };
}

/** A node:https origin on 127.0.0.1:0 with the test certificate. */
export async function startHttpsOrigin(handler: http.RequestListener) {
  const server = https.createServer(TLS, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, close: () => closeServer(server) };
}

/** A raw TCP origin on 127.0.0.1:0 (allowHalfOpen), handing each socket to `onSocket`. */
export async function startRawOrigin(onSocket: (socket: net.Socket) => void) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await closeServer(server);
    },
  };
}

async function closeServer(server: net.Server): Promise<void> {
  (server as http.Server).closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * A port on 127.0.0.1 where connecting is refused, and that no other test can take meanwhile.
 * A port bound then closed would not do: it goes back to the kernel's ephemeral range, and a
 * server that another test (of the same run, in parallel) binds to port 0 may get it, so one
 * test's requests reach the other's server. Tests bind only port 0, so a port below the
 * ephemeral range is never handed out; one that refuses a connection now stays refused.
 */
export async function closedPort(): Promise<number> {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await refuses(port)) return port;
  }
  throw new Error(`no refusing port found below ${low}`);
}

/** The first port of the kernel's ephemeral range (Linux), or IANA's 49152 elsewhere. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (low > 11_000) return low;
  } catch {
    // Not Linux: the IANA range.
  }
  return 49_152;
}

/** Whether a connection to 127.0.0.1:port is refused (bounded: 2 s). */
async function refuses(port: number): Promise<boolean> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setTimeout(2000);
  try {
    return await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(false));
      socket.once('timeout', () => resolve(false));
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
    });
  } finally {
    socket.destroy();
  }
}

/**
 * Awaits `starting` (a proxy process, say); if it fails, first closes what the test had already
 * started. Otherwise a server left open keeps the test file, and AVA, from ever exiting: a CLI
 * slow to start on a loaded machine would hang the whole run instead of failing one test.
 */
export async function orClose<T>(starting: Promise<T>, ...started: { close(): Promise<unknown> }[]): Promise<T> {
  try {
    return await starting;
  } catch (error) {
    for (const server of started) await server.close();
    throw error;
  }
}

/** Connects to the proxy (allowHalfOpen), optionally writing bytes at once. */
export async function connectTo(port: number, data?: string | Buffer): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.on('error', () => {});
  await once(socket, 'connect');
  if (data !== undefined) socket.write(data);
  return socket;
}

/** Everything a socket receives until the peer closes (or `timeoutMs` passes, then it is destroyed). */
export function readAll(socket: net.Socket, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** Sends raw bytes to the proxy and returns everything it answered before closing. */
export async function rawExchange(port: number, data: string | Buffer, options: { end?: boolean } = {}): Promise<string> {
  const socket = await connectTo(port);
  const all = readAll(socket);
  if (options.end) socket.end(data);
  else socket.write(data);
  return (await all).toString('latin1');
}

/** Reads from a socket until `predicate` holds on what arrived so far; returns that text. */
export function readUntil(socket: net.Socket, predicate: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => done(new Error(`timed out; got ${JSON.stringify(text.slice(0, 200))}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (predicate(text)) done();
    };
    const onClose = () => done(predicate(text) ? undefined : new Error(`closed; got ${JSON.stringify(text.slice(0, 200))}`));
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve(text);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Opens a CONNECT tunnel through the proxy; resolves with the socket once the 200 arrived. */
export async function openTunnel(proxyPort: number, authority: string, early?: Buffer | string) {
  const socket = await connectTo(proxyPort, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  if (early !== undefined) socket.write(early);
  const head = await readUntil(socket, (text) => text.includes('\r\n\r\n'));
  return { socket, head };
}

/** Anything a test starts and must close at its end (origins, proxies). */
export interface Closable {
  close(): Promise<unknown>;
}

/**
 * The set-up and tear-down of most tunnel tests: opens a CONNECT tunnel to `authority` through
 * `proxy` (started, or starting), runs `body` with its socket and the proxy's answer head, then
 * destroys the socket and closes the proxy and `others` (origins), in that order, whatever
 * happened (even when the proxy failed to start).
 */
export async function withTunnel<P extends Closable & { port: number }>(
  proxy: P | Promise<P>,
  authority: string,
  others: readonly Closable[],
  body: (tunnel: { socket: net.Socket; head: string }, proxy: P) => Promise<void>,
): Promise<void> {
  let started: P | undefined;
  let socket: net.Socket | undefined;
  try {
    started = await proxy;
    const tunnel = await openTunnel(started.port, authority);
    socket = tunnel.socket;
    await body(tunnel, started);
  } finally {
    socket?.destroy();
    await started?.close();
    for (const other of others) await other.close();
  }
}

/** Sends one request through the proxy with node:http (absolute-form); resolves status, headers and body. */
export function proxiedRequest(proxyPort: number, url: string, options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port: proxyPort, method: options.method ?? 'GET', path: url, headers: options.headers, agent: false });
    request.on('error', reject);
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.end(options.body);
  });
}
