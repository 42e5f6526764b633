// A real redis-server for tests: on a free loopback port, persistence off, killed at the end.
// It can be stopped and started again on the same port (Redis down, then back), or paused with
// SIGSTOP (Redis slow: connected, never answering).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';

/** Where Debian installs it. */
export const REDIS_SERVER = '/usr/bin/redis-server';
/** Whether redis-server is installed here; tests needing it skip (and say why) when not. */
export const hasRedis = existsSync(REDIS_SERVER);
/** The message a skipped test logs. */
export const NO_REDIS = `${REDIS_SERVER} is not installed (apt-get install redis-server); the Redis store tests are skipped`;

/** A redis-server child process on 127.0.0.1. */
export interface RedisServer {
  /** Its port, the same across stop and start. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Kills it (SIGKILL: like a crash, nothing is saved); `start` brings an empty one back on the same port. */
  stop(): Promise<void>;
  /** Starts it again on the same port, after `stop` (nothing when it runs). */
  start(): Promise<void>;
  /** SIGSTOP: connections stay open, nothing is answered (a slow Redis). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** Kills it for good. */
  close(): Promise<void>;
}

/** Starts redis-server on a free loopback port and waits until it answers PING (bounded). */
export async function startRedis(): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      let child = await spawnRedis(port);
      const server: RedisServer = {
        port,
        url: `redis://127.0.0.1:${port}`,
        stop: async () => kill(child),
        start: async () => {
          if (child.exitCode === null && child.signalCode === null) return;
          child = await spawnRedis(port);
        },
        pause: () => child.kill('SIGSTOP'),
        resume: () => child.kill('SIGCONT'),
        close: async () => kill(child),
      };
      return server;
    } catch (error) {
      // Another process may have taken the port meanwhile: try another.
      lastError = error;
    }
  }
  throw new Error(`redis-server did not start: ${String(lastError)}`);
}

/** Every redis-server started and not yet killed: killed when the test process exits, whatever a test left. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function spawnRedis(port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
    cwd: os.tmpdir(),
    stdio: 'ignore',
  });
  child.on('error', () => {});
  running.add(child);
  child.on('exit', () => running.delete(child));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited with ${child.exitCode ?? child.signalCode}`);
    if (await answersPing(port)) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await kill(child);
  throw new Error(`redis-server did not answer PING on port ${port}`);
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** One PING on a new connection: true on +PONG, false on anything else within 500 ms. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    let text = '';
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\r\n')) done(text.startsWith('+PONG'));
    });
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
