// The soak's well-behaved clients. Each request is checked (status, and every body byte against
// the pattern) and counted done or failed: through the proxy, nothing here should ever fail.
//   http-get:    node:http Agent keepAlive; GETs of 0 B to 1 MiB, some slow, some dribbled, HEADs, 204s
//   http-post:   the same Agent kind; POSTs (Content-Length or chunked) to an echo or a sink
//   tunnel-echo: CONNECT to the TCP echo; a few rounds of bytes, each checked as it comes back
//   https:       node:https through CONNECT tunnels (keep-alive inside each), GETs and POSTs
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { openTunnel } from './tunnel.js';
import { between, loop, PATTERN, PatternCheck, pick, track, writePattern, type ClientContext } from './soak-shared.js';

/** A well-behaved request that has not completed by then has failed. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Clients close kept-alive connections idle this long, well before the proxy's keepAliveTimeoutMs would. */
const CLIENT_IDLE_MS = 1000;

/** One request and what must come back. */
interface Plan {
  method: 'GET' | 'HEAD' | 'POST';
  /** Origin-form path and query. */
  path: string;
  status: number;
  /** Request body: `size` pattern bytes from `offset`, with Content-Length or chunked. */
  upload?: { offset: number; size: number; chunked: boolean };
  /** Expected response body: pattern bytes, a text, or nothing (HEAD: Content-Length must say `headLength`). */
  expect: { pattern: { offset: number; size: number } } | { text: string } | { empty: true; headLength?: number };
  /** Ask for the connection to close after this response (so connections come and go too). */
  close: boolean;
}

const KiB = 1024;

/** GET sizes, weighted by repetition towards small bodies. */
const GET_SIZES = [0, 1, 100, 1 * KiB, 1 * KiB, 4 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1024 * KiB];
const POST_SIZES = [0, 1, 1 * KiB, 1 * KiB, 16 * KiB, 100 * KiB, 256 * KiB];

/** A GET (or HEAD, or a 204): mostly quick, 7 % delayed 0.1–1.5 s, 5 % dribbled over up to 2 s. */
function getPlan(): Plan {
  const offset = between(0, PATTERN.length - 1);
  const close = Math.random() < 0.05;
  const roll = Math.random();
  if (roll < 0.02) return { method: 'GET', path: '/status/204', status: 204, expect: { empty: true }, close };
  if (roll < 0.05) {
    const size = pick(GET_SIZES);
    return { method: 'HEAD', path: `/bytes?size=${size}&offset=${offset}`, status: 200, expect: { empty: true, headLength: size }, close };
  }
  let size = pick(GET_SIZES);
  let extra = '';
  if (roll < 0.12) {
    size = 1 * KiB;
    extra = `&delay=${between(100, 1500)}`;
  } else if (roll < 0.17) {
    size = pick([1 * KiB, 16 * KiB, 64 * KiB]);
    extra = `&chunks=${between(2, 10)}&gap=${between(20, 200)}`;
  }
  return { method: 'GET', path: `/bytes?size=${size}&offset=${offset}${extra}`, status: 200, expect: { pattern: { offset, size } }, close };
}

/** A POST: 70 % to the echo (the body must come back), 30 % to the sink (its length must come back). */
function postPlan(): Plan {
  const offset = between(0, PATTERN.length - 1);
  const size = pick(POST_SIZES);
  const upload = { offset, size, chunked: Math.random() < 0.3 };
  const close = Math.random() < 0.05;
  if (Math.random() < 0.7) return { method: 'POST', path: '/echo', status: 200, upload, expect: { pattern: { offset, size } }, close };
  return { method: 'POST', path: '/sink', status: 200, upload, expect: { text: String(size) }, close };
}

/** Sends one request, reads and checks the whole response; resolves undefined when right, else why not. */
function exchange(send: (headers: http.OutgoingHttpHeaders) => http.ClientRequest, plan: Plan): Promise<string | undefined> {
  return new Promise((resolve) => {
    const headers: http.OutgoingHttpHeaders = {};
    if (plan.close) headers.Connection = 'close';
    if (plan.upload && !plan.upload.chunked) headers['Content-Length'] = plan.upload.size;
    const req = send(headers);
    let settled = false;
    const finish = (reason: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (reason !== undefined) req.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => finish(`no complete response within ${REQUEST_TIMEOUT_MS} ms`), REQUEST_TIMEOUT_MS);
    req.on('error', (error: NodeJS.ErrnoException) => finish(`request error ${error.code ?? error.message}`));
    req.on('response', (res) => {
      res.on('error', (error: NodeJS.ErrnoException) => finish(`response error ${error.code ?? error.message}`));
      if (res.statusCode !== plan.status) {
        res.resume();
        return finish(`status ${res.statusCode}, expected ${plan.status}`);
      }
      const expect = plan.expect;
      const check = 'pattern' in expect ? new PatternCheck(expect.pattern.offset) : undefined;
      let text = '';
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (check) check.push(chunk);
        else if (text.length < 64) text += chunk.toString('latin1');
      });
      res.on('end', () => {
        if ('pattern' in expect) return finish(check!.verdict(expect.pattern.size));
        if ('text' in expect) return finish(text === expect.text ? undefined : `body ${JSON.stringify(text)}, expected ${JSON.stringify(expect.text)}`);
        if (bytes !== 0) return finish(`${bytes} body bytes, expected none`);
        if (expect.headLength !== undefined && res.headers['content-length'] !== String(expect.headLength)) {
          return finish(`HEAD Content-Length ${res.headers['content-length']}, expected ${expect.headLength}`);
        }
        finish(undefined);
      });
      res.on('close', () => {
        if (!res.complete) finish(`response cut after ${bytes} body bytes`);
      });
    });
    if (plan.upload) writePattern(req, plan.upload.offset, plan.upload.size, () => req.end());
    else req.end();
  });
}

/** Plain HTTP through the proxy, absolute-form, on kept-alive connections from `agent`. */
async function viaProxy(ctx: ClientContext, agent: http.Agent, kind: string, plan: Plan): Promise<void> {
  const authority = `127.0.0.1:${ctx.ports.http}`;
  const reason = await exchange(
    (headers) =>
      http.request({
        agent,
        host: '127.0.0.1',
        port: ctx.proxyPort,
        method: plan.method,
        path: `http://${authority}${plan.path}`,
        headers: { Host: authority, ...headers },
      }),
    plan,
  );
  if (reason === undefined) ctx.tally.ok(kind);
  else ctx.tally.fail(kind, `${plan.method} ${plan.path}`, reason);
}

/** An https Agent whose connections are TLS inside CONNECT tunnels through the proxy. */
class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxyPort: number,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    openTunnel(this.proxyPort, Number(options.port), REQUEST_TIMEOUT_MS).then(
      ({ socket, leftover }) => {
        track(socket);
        if (leftover.length > 0) {
          socket.destroy();
          return callback!(new Error(`${leftover.length} bytes came through the tunnel before the TLS handshake`), undefined as never);
        }
        const secure = tls.connect({ socket, servername: 'localhost', ca: options.ca });
        secure.on('error', () => {}); // the request that gets this socket reports it
        secure.once('close', () => socket.destroy());
        callback!(null, secure);
      },
      (error: Error) => callback!(new Error(`CONNECT failed: ${error.message}`), undefined as never),
    );
    return undefined;
  }
}

/** An http Agent whose sockets are tracked, so the soak can count and close them. */
class TrackedAgent extends http.Agent {
  override createConnection(options: http.ClientRequestArgs): Duplex {
    return track(net.createConnection(options as net.NetConnectOpts));
  }
}

/** Options of the client-side agents: kept alive, closed after CLIENT_IDLE_MS idle, at most `sockets` open. */
const agentOptions = (sockets: number) => ({ keepAlive: true, maxSockets: sockets, timeout: CLIENT_IDLE_MS, scheduling: 'fifo' as const });

/** How many loops of each well-behaved kind run at once (each holds at most one connection). */
export interface WellBehavedMix {
  'http-get': number;
  'http-post': number;
  'tunnel-echo': number;
  https: number;
}

/** Starts every well-behaved loop; resolves when all have stopped (after `ctx.stopping()`), agents closed. */
export async function runWellBehaved(ctx: ClientContext, mix: WellBehavedMix, ca: Buffer): Promise<void> {
  const getAgent = new TrackedAgent(agentOptions(mix['http-get']));
  const postAgent = new TrackedAgent(agentOptions(mix['http-post']));
  const tunnelAgent = new TunnelAgent(ctx.proxyPort, agentOptions(mix.https));
  const httpsRequest = async () => {
    const plan = Math.random() < 0.7 ? getPlan() : postPlan();
    const reason = await exchange(
      (headers) =>
        https.request({
          agent: tunnelAgent,
          host: '127.0.0.1',
          port: ctx.ports.https,
          servername: 'localhost',
          ca,
          method: plan.method,
          path: plan.path,
          headers,
        }),
      plan,
    );
    if (reason === undefined) ctx.tally.ok('https');
    else ctx.tally.fail('https', `${plan.method} ${plan.path}`, reason);
  };
  const loops = [
    ...Array.from({ length: mix['http-get'] }, () => loop(ctx, 'http-get', () => viaProxy(ctx, getAgent, 'http-get', getPlan()))),
    ...Array.from({ length: mix['http-post'] }, () => loop(ctx, 'http-post', () => viaProxy(ctx, postAgent, 'http-post', postPlan()))),
    ...Array.from({ length: mix['tunnel-echo'] }, () => loop(ctx, 'tunnel-echo', () => tunnelEcho(ctx))),
    ...Array.from({ length: mix.https }, () => loop(ctx, 'https', httpsRequest)),
  ];
  try {
    await Promise.all(loops);
  } finally {
    for (const agent of [getAgent, postAgent, tunnelAgent]) agent.destroy();
  }
}

/** One tunnel to the echo origin: 1–8 rounds of 1 B–256 KiB, each checked as it comes back, then a clean close. */
async function tunnelEcho(ctx: ClientContext): Promise<void> {
  let tunnel;
  try {
    tunnel = await openTunnel(ctx.proxyPort, ctx.ports.echo, REQUEST_TIMEOUT_MS);
  } catch (error) {
    return ctx.tally.fail('tunnel-echo', 'CONNECT', (error as Error).message);
  }
  const socket = track(tunnel.socket);
  const rounds = between(1, 8);
  const reason = await new Promise<string | undefined>((resolve) => {
    let round = 0;
    let size = 0;
    let check = new PatternCheck(0);
    let closing = false;
    let pause: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (why: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(pause);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => finish(`round ${round} of ${rounds} not done within ${REQUEST_TIMEOUT_MS} ms`), REQUEST_TIMEOUT_MS);
    const next = () => {
      if (round === rounds) {
        closing = true;
        return void socket.end(); // the echo answers our FIN with its own; then the socket closes
      }
      round++;
      size = Math.random() < 0.1 ? between(64 * KiB, 256 * KiB) : between(1, 16 * KiB);
      const offset = between(0, PATTERN.length - 1);
      check = new PatternCheck(offset);
      writePattern(socket, offset, size, () => {});
    };
    socket.on('data', (chunk: Buffer) => {
      if (closing) return finish(`${chunk.length} bytes after the last round`);
      check.push(chunk);
      if (check.received < size) return;
      const wrong = check.verdict(size);
      if (wrong) return finish(`round ${round}: ${wrong}`);
      pause = setTimeout(next, between(0, 300));
    });
    socket.once('close', () => finish(closing ? undefined : `tunnel closed in round ${round} of ${rounds} after ${check.received} of ${size} bytes`));
    if (tunnel.leftover.length > 0) return finish(`${tunnel.leftover.length} bytes came before any was sent`);
    socket.resume();
    next();
  });
  if (reason === undefined) ctx.tally.ok('tunnel-echo');
  else ctx.tally.fail('tunnel-echo', `CONNECT 127.0.0.1:${ctx.ports.echo}`, reason);
}
