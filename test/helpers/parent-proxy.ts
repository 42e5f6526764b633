// Small real parent proxies for the upstream-proxy tests, on 127.0.0.1:0: an HTTP/HTTPS parent
// (node:http(s): absolute-form requests and CONNECT) and a raw SOCKS5 parent. Each records what it
// received and reaches only 127.0.0.1, whatever name it is asked for (names are resolved "by the
// parent" to the loopback address). Everything they open, they close.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { PluginSpec } from '../../src/core/registry.js';
import type { UpstreamProxyOptions } from '../../src/plugins/upstream-proxy.plugin.js';
import { closedPort, startHttpOrigin, TLS } from './net.js';

/** A request head as a parent received it. */
export interface ParentRequest {
  method: string;
  /** As sent: absolute-form for plain HTTP, authority-form for CONNECT. */
  url: string;
  /** Raw fields, in order and case. */
  headers: [string, string][];
}

/** What an HTTP(S) parent does with each request. */
export interface HttpParentOptions {
  /** TLS with the test certificate (an `https://` parent). */
  tls?: boolean;
  /** `user:pass` it requires as Basic Proxy-Authorization (407 otherwise). */
  auth?: string;
  /** Answers every request and CONNECT with this status instead of forwarding. */
  refuse?: number;
}

/** Every field value of `name` in a recorded head (case-insensitive). */
export function fieldValues(request: ParentRequest, name: string): string[] {
  return request.headers.filter(([key]) => key.toLowerCase() === name.toLowerCase()).map(([, value]) => value);
}

const pairs = (raw: string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
};

/**
 * Listens on 127.0.0.1:0 and counts and keeps the server's connections, so a test can read how
 * many were made and `close()` ends them all.
 */
async function listenTracked<R>(server: net.Server, requests: R[]) {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  server.on('connection', (socket: net.Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    get connections() {
      return connections;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An HTTP (or HTTPS) forward proxy that records each head, optionally requiring auth or refusing. */
export async function startHttpParent(options: HttpParentOptions = {}) {
  const requests: ParentRequest[] = [];
  const expected = options.auth === undefined ? undefined : `Basic ${Buffer.from(options.auth).toString('base64')}`;
  const refusal = (headers: [string, string][]): number | undefined => {
    if (options.refuse !== undefined) return options.refuse;
    if (expected !== undefined && !headers.some(([key, value]) => key.toLowerCase() === 'proxy-authorization' && value === expected)) return 407;
    return undefined;
  };
  const onRequest = (request: http.IncomingMessage, response: http.ServerResponse) => {
    const headers = pairs(request.rawHeaders);
    requests.push({ method: request.method!, url: request.url!, headers });
    const refused = refusal(headers);
    if (refused !== undefined) {
      response.writeHead(refused, refused === 407 ? { 'Proxy-Authenticate': 'Basic realm="parent"' } : {});
      return void response.end('parent says no\n');
    }
    let url: URL;
    try {
      url = new URL(request.url!);
    } catch {
      response.writeHead(400);
      return void response.end('parent wants absolute-form\n');
    }
    const forwarded = headers.filter(([key]) => !/^(proxy-authorization|proxy-connection|connection|keep-alive)$/i.test(key));
    const upstream = http.request({
      host: '127.0.0.1',
      port: Number(url.port || 80),
      method: request.method,
      path: url.pathname + url.search,
      headers: forwarded.flat(),
      agent: false,
    });
    upstream.on('response', (answer) => {
      // The parent's own connection to us stays kept-alive whatever the origin said to it.
      const { connection: _connection, 'keep-alive': _keepAlive, ...headers } = answer.headers;
      response.writeHead(answer.statusCode!, headers);
      answer.pipe(response);
    });
    upstream.on('error', () => {
      response.writeHead(502);
      response.end('parent cannot reach origin\n');
    });
    request.pipe(upstream);
  };
  const server = options.tls ? https.createServer(TLS, onRequest) : http.createServer(onRequest);
  server.on('connect', (request: http.IncomingMessage, client: net.Socket, early: Buffer) => {
    const headers = pairs(request.rawHeaders);
    requests.push({ method: 'CONNECT', url: request.url!, headers });
    client.on('error', () => {});
    const refused = refusal(headers);
    if (refused !== undefined) {
      const extra = refused === 407 ? 'Proxy-Authenticate: Basic realm="parent"\r\n' : '';
      return void client.end(`HTTP/1.1 ${refused} ${http.STATUS_CODES[refused]}\r\n${extra}Content-Length: 0\r\n\r\n`);
    }
    const port = Number(request.url!.slice(request.url!.lastIndexOf(':') + 1));
    const upstream = net.connect({ host: '127.0.0.1', port });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'));
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (early.length > 0) upstream.write(early);
      client.pipe(upstream).pipe(client);
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
    });
  });
  return listenTracked(server, requests);
}

/** A SOCKS5 CONNECT request as the raw parent received it. */
export interface SocksRequest {
  /** Address type: 1 IPv4, 3 domain name, 4 IPv6. */
  atyp: number;
  host: string;
  port: number;
  /** The user name it authenticated with, if any. */
  user?: string;
}

/**
 * A raw SOCKS5 server (RFC 1928/1929): no authentication, or user/password when `auth` is set;
 * CONNECT only, to 127.0.0.1 at the requested port (reply 5 when refused); `reply` answers every
 * CONNECT with that reply code instead.
 */
export async function startSocksParent(options: { auth?: { user: string; pass: string }; reply?: number } = {}) {
  const requests: SocksRequest[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    let state: 'greeting' | 'auth' | 'request' | 'done' = 'greeting';
    let user: string | undefined;
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (state === 'greeting') {
          if (buffer.length < 2 || buffer.length < 2 + buffer[1]!) return;
          const methods = [...buffer.subarray(2, 2 + buffer[1]!)];
          buffer = buffer.subarray(2 + buffer[1]!);
          const wanted = options.auth ? 2 : 0;
          if (!methods.includes(wanted)) return void socket.end(Buffer.from([5, 0xff]));
          socket.write(Buffer.from([5, wanted]));
          state = options.auth ? 'auth' : 'request';
        } else if (state === 'auth') {
          if (buffer.length < 2) return;
          const ulen = buffer[1]!;
          if (buffer.length < 3 + ulen) return;
          const plen = buffer[2 + ulen]!;
          if (buffer.length < 3 + ulen + plen) return;
          user = buffer.toString('utf8', 2, 2 + ulen);
          const pass = buffer.toString('utf8', 3 + ulen, 3 + ulen + plen);
          buffer = buffer.subarray(3 + ulen + plen);
          const ok = user === options.auth!.user && pass === options.auth!.pass;
          if (!ok) return void socket.end(Buffer.from([1, 1]));
          socket.write(Buffer.from([1, 0]));
          state = 'request';
        } else if (state === 'request') {
          if (buffer.length < 5) return;
          const atyp = buffer[3]!;
          const length = atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + buffer[4]!;
          if (buffer.length < 4 + length + 2) return;
          const host =
            atyp === 1
              ? [...buffer.subarray(4, 8)].join('.')
              : atyp === 3
                ? buffer.toString('latin1', 5, 5 + buffer[4]!)
                : buffer.subarray(4, 20).toString('hex');
          const port = buffer.readUInt16BE(4 + length);
          const rest = buffer.subarray(4 + length + 2);
          requests.push({ atyp, host, port, user });
          state = 'done';
          socket.off('data', onData);
          const reply = (code: number) => Buffer.from([5, code, 0, 1, 127, 0, 0, 1, 0, 0]);
          if (options.reply !== undefined) return void socket.end(reply(options.reply));
          const upstream = net.connect({ host: '127.0.0.1', port });
          upstream.on('error', () => socket.end(reply(5)));
          upstream.once('connect', () => {
            socket.write(reply(0));
            if (rest.length > 0) upstream.write(rest);
            socket.pipe(upstream).pipe(socket);
            upstream.on('close', () => socket.destroy());
            socket.on('close', () => upstream.destroy());
          });
          return;
        } else return;
      }
    };
    socket.on('data', onData);
  });
  return listenTracked(server, requests);
}

/** Debian's dante SOCKS server, if installed. */
export const DANTED = '/usr/sbin/danted';
/** Whether danted can be tried at all. */
export const hasDanted = (): boolean => existsSync(DANTED);

/**
 * Starts danted on a free loopback port (no authentication, CONNECT from 127.0.0.1 to anywhere,
 * going out from 127.0.0.1). Resolves undefined (with the reason) when it does not come up within
 * a few seconds; close() stops the process it started, by its pid.
 */
export async function startDanted(): Promise<{ port: number; close: () => Promise<void> } | { failed: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'proxyline-danted-'));
  const port = await closedPort();
  const root = process.getuid?.() === 0;
  const config = [
    'logoutput: stderr',
    `internal: 127.0.0.1 port = ${port}`,
    'external: 127.0.0.1',
    'clientmethod: none',
    'socksmethod: none',
    ...(root ? ['user.privileged: root', 'user.unprivileged: root'] : []),
    'client pass { from: 127.0.0.1/32 to: 0.0.0.0/0 }',
    'socks pass { from: 127.0.0.1/32 to: 0.0.0.0/0 command: connect }',
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'danted.conf'), config);
  const child: ChildProcess = spawn(DANTED, ['-f', path.join(dir, 'danted.conf'), '-N', '1', '-p', path.join(dir, 'danted.pid')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 3000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const up = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (/running/.test(log)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.once('error', (error) => {
      log += String(error);
      clearTimeout(timer);
      resolve(false);
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!up) {
    await stop();
    return { failed: `danted did not start: ${log.trim().split('\n').slice(-2).join(' | ')}` };
  }
  return { port, close: stop };
}

/** The chain with upstream-proxy where it belongs; `dialer` options for upstream-dialer. */
export const parentChain = (options: Partial<UpstreamProxyOptions>, dialer: Record<string, unknown> = {}): PluginSpec[] => [
  'head-parser',
  'connect-handler',
  'http-forward',
  { name: 'upstream-proxy', options },
  { name: 'upstream-dialer', options: dialer },
];

/** An origin that answers `origin <path>` and records each request's head fields. */
export async function recordingOrigin() {
  const seen: { url: string; headers: string[] }[] = [];
  const origin = await startHttpOrigin((request, response) => {
    seen.push({ url: request.url!, headers: request.rawHeaders });
    response.end(`origin ${request.url}`);
  });
  return Object.assign(origin, { seen });
}
