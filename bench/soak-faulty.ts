// The soak's faulty and idle clients: they are not failures whatever happens to them, but how
// each one ended is counted (the proxy's status, if any, and who closed). Each waits for the
// proxy at most `ctx.giveUpMs`, then gives up and closes ("gave up": the proxy kept it open).
//   reset-mid-head:  part of a request head, then a TCP reset
//   reset-mid-body:  a head with Content-Length and part of the body, then a TCP reset
//   garbage:         random bytes (half of the time followed by CRLF CRLF)
//   slow-reader:     a 1–4 MiB response read in small steps (pause/resume), checked byte by byte
//   stalled-body:    a head with Content-Length and part of the body, then nothing
//   close-pending:   a request for a slow response, closed before it comes
//   stalled-head:    part of a request head, then nothing (the proxy's headersTimeoutMs)
//   idle-keepalive:  one request, then idle on the kept-alive connection (keepAliveTimeoutMs)
//   idle-tunnel:     a CONNECT tunnel nobody uses (tunnelIdleTimeoutMs, once merged)
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { openTunnel } from './tunnel.js';
import { between, closedByTheSoak, loop, PATTERN, PatternCheck, sleep, track, writePattern, type ClientContext } from './soak-shared.js';

/** How many loops of each faulty or idle kind run at once (each holds at most one connection). */
export type FaultyMix = Record<FaultyKind, number>;
export type FaultyKind = keyof typeof KINDS;

/** Up to this long between two iterations of a faulty loop (connection churn stays moderate). */
const PAUSE_MS = 50;

/** A connected client socket (tracked); throws if the proxy does not accept. */
async function connect(ctx: ClientContext): Promise<net.Socket> {
  const socket = track(net.connect({ host: '127.0.0.1', port: ctx.proxyPort }));
  await once(socket, 'connect'); // rejects on 'error'
  return socket;
}

/** A request head for the http origin, absolute-form. */
function head(ctx: ClientContext, method: string, path: string, fields = ''): string {
  const authority = `127.0.0.1:${ctx.ports.http}`;
  return `${method} http://${authority}${path} HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: proxyline-soak\r\n${fields}\r\n`;
}

/** How a connection ended: the status of the proxy's response if one began, and who closed. */
interface Ending {
  status?: number;
  bytes: number;
  /** 'closed by proxy', 'reset by proxy', 'gave up', 'closed by the soak at the end', or the socket error's code (or message). */
  how: string;
}

/** Reads until the socket closes or `giveUpMs` passes (then destroys it). */
function watch(socket: net.Socket, giveUpMs: number): Promise<Ending> {
  return new Promise((resolve) => {
    let first = '';
    let bytes = 0;
    let how = 'closed by proxy';
    const timer = setTimeout(() => {
      how = 'gave up';
      socket.destroy();
    }, giveUpMs);
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (first.length < 16) first += chunk.toString('latin1', 0, 16);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (how === 'closed by proxy') how = error.code === 'ECONNRESET' ? 'reset by proxy' : (error.code ?? error.message);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (closedByTheSoak(socket) && how === 'closed by proxy') how = 'closed by the soak at the end';
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(first);
      resolve({ status: status ? Number(status[1]) : undefined, bytes, how });
    });
    socket.resume();
  });
}

/** "HTTP 408, closed by proxy", "no response, gave up after 6 s (proxy kept it open)", … */
function describe(ending: Ending, giveUpMs: number): string {
  const response = ending.status !== undefined ? `HTTP ${ending.status}` : ending.bytes > 0 ? 'bytes without a status line' : 'no response';
  const how = ending.how === 'gave up' ? `client gave up after ${giveUpMs / 1000} s (proxy kept it open)` : ending.how;
  return `${response}, ${how}`;
}

/** Resets the connection now, unless the proxy closed it already (that is the outcome then). */
function reset(socket: net.Socket): string {
  if (socket.destroyed || socket.readableEnded) {
    socket.destroy();
    return 'proxy closed it before the reset';
  }
  socket.resetAndDestroy();
  return 'reset by client';
}

async function resetMidHead(ctx: ClientContext): Promise<string> {
  const socket = await connect(ctx);
  const text = head(ctx, 'GET', `/bytes?size=100&offset=0`);
  socket.write(text.slice(0, between(1, text.length - 4))); // never the blank line that ends it
  await sleep(between(0, 100));
  return reset(socket);
}

async function resetMidBody(ctx: ClientContext): Promise<string> {
  const socket = await connect(ctx);
  const size = between(10_000, 1_000_000);
  const path = Math.random() < 0.5 ? '/sink' : '/echo';
  socket.write(head(ctx, 'POST', path, `Content-Length: ${size}\r\n`));
  writePattern(socket, 0, between(0, size - 1), () => {});
  await sleep(between(0, 100));
  return reset(socket);
}

async function garbage(ctx: ClientContext): Promise<string> {
  const socket = await connect(ctx);
  socket.write(randomBytes(between(1, 2048)));
  if (Math.random() < 0.5) socket.write('\r\n\r\n');
  return describe(await watch(socket, ctx.giveUpMs), ctx.giveUpMs);
}

/** Reads a 1–4 MiB response in steps: after each chunk, 20–100 ms paused. */
async function slowReader(ctx: ClientContext): Promise<string> {
  const socket = await connect(ctx);
  const size = between(1024 * 1024, 4 * 1024 * 1024);
  const offset = between(0, PATTERN.length - 1);
  socket.write(head(ctx, 'GET', `/bytes?size=${size}&offset=${offset}`));
  return new Promise((resolve) => {
    let headText = '';
    let status = 0;
    let check: PatternCheck | undefined;
    let resume: NodeJS.Timeout | undefined;
    let outcome: string | undefined;
    const finish = (what: string) => {
      outcome ??= what;
      clearTimeout(resume);
      socket.destroy();
    };
    const timer = setTimeout(() => finish('client gave up after 60 s'), 60_000);
    socket.on('data', (chunk: Buffer) => {
      if (!check) {
        headText += chunk.toString('latin1');
        const end = headText.indexOf('\r\n\r\n');
        if (end < 0) return;
        status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(headText)?.[1] ?? 0);
        if (status !== 200) return finish(`HTTP ${status}`);
        check = new PatternCheck(offset);
        chunk = Buffer.from(headText.slice(end + 4), 'latin1');
      }
      check.push(chunk);
      if (check.received >= size) return finish(check.verdict(size) === undefined ? 'complete, body intact' : 'complete, BODY WRONG');
      socket.pause();
      resume = setTimeout(() => socket.resume(), between(20, 100));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (closedByTheSoak(socket)) outcome ??= 'closed by the soak at the end';
      resolve(outcome ?? (status ? `HTTP ${status}, closed by proxy inside the body` : 'no response, closed by proxy'));
    });
  });
}

async function stalledBody(ctx: ClientContext): Promise<string> {
  const socket = await connect(ctx);
  const size = 100_000;
  socket.write(head(ctx, 'POST', '/sink', `Content-Length: ${size}\r\n`));
  writePattern(socket, 0, between(0, size / 2), () => {});
  return describe(await watch(socket, ctx.giveUpMs), ctx.giveUpMs);
}

async function closePending(ctx: ClientContext): Promise<string> {
  const socket = await connect(ctx);
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
  socket.write(head(ctx, 'GET', `/bytes?size=1024&offset=0&delay=${between(500, 2000)}`));
  await sleep(between(50, 400));
  const closedAlready = socket.destroyed || socket.readableEnded;
  socket.destroy();
  if (closedAlready) return 'proxy closed it first';
  return bytes > 0 ? 'response came before the close' : 'closed by client before the response';
}

async function stalledHead(ctx: ClientContext): Promise<string> {
  const socket = await connect(ctx);
  const text = head(ctx, 'GET', '/bytes?size=100&offset=0');
  socket.write(text.slice(0, between(1, text.length - 4)));
  return describe(await watch(socket, ctx.giveUpMs), ctx.giveUpMs);
}

async function idleKeepAlive(ctx: ClientContext): Promise<string> {
  const socket = await connect(ctx);
  socket.write(head(ctx, 'GET', '/bytes?size=100&offset=0'));
  return describe(await watch(socket, ctx.giveUpMs), ctx.giveUpMs);
}

async function idleTunnel(ctx: ClientContext): Promise<string> {
  const { socket } = await openTunnel(ctx.proxyPort, ctx.ports.echo, 10_000);
  track(socket);
  const ending = await watch(socket, ctx.giveUpMs);
  return ending.how === 'gave up' ? `client gave up after ${ctx.giveUpMs / 1000} s (proxy kept it open)` : ending.how;
}

const KINDS = {
  'reset-mid-head': resetMidHead,
  'reset-mid-body': resetMidBody,
  garbage,
  'slow-reader': slowReader,
  'stalled-body': stalledBody,
  'close-pending': closePending,
  'stalled-head': stalledHead,
  'idle-keepalive': idleKeepAlive,
  'idle-tunnel': idleTunnel,
} satisfies Record<string, (ctx: ClientContext) => Promise<string>>;

/** Starts every faulty loop; resolves when all have stopped (after `ctx.stopping()`). */
export async function runFaulty(ctx: ClientContext, mix: FaultyMix): Promise<void> {
  const loops: Promise<void>[] = [];
  for (const [kind, count] of Object.entries(mix) as [FaultyKind, number][]) {
    const client = KINDS[kind];
    const iteration = async () => {
      let how: string;
      try {
        how = await client(ctx);
      } catch (error) {
        how = `could not start: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      }
      ctx.tally.outcome(kind, how);
    };
    for (let i = 0; i < count; i++) loops.push(loop(ctx, kind, iteration, PAUSE_MS));
  }
  await Promise.all(loops);
}
