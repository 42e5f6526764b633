// A loopback port where a TCP connect hangs: a python3 child listens with a backlog of 0 and never
// accepts; once its accept queue is full the kernel drops further SYNs, so connect() never completes.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';

const SCRIPT = [
  'import socket, sys',
  's = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
  "s.bind(('127.0.0.1', 0))",
  's.listen(0)',
  'print(s.getsockname()[1], flush=True)',
  'sys.stdin.read()',
].join('\n');

/** Starts the black hole; `port` hangs every new connect until `close()`. Throws if it cannot be made to hang. */
export async function startBlackHole(): Promise<{ port: number; close: () => Promise<void> }> {
  const child = spawn('python3', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const fillers: net.Socket[] = [];
  const close = async () => {
    for (const socket of fillers) socket.destroy();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error('python3 did not start')), 10_000);
      child.once('error', reject);
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\n')) {
          clearTimeout(timer);
          resolve(Number(text.trim()));
        }
      });
    });
    // Fill the accept queue: connect until one attempt stays pending (bounded).
    for (let i = 0; i < 16; i++) {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => {});
      fillers.push(socket);
      const connected = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 500);
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!connected) return { port, close };
    }
    throw new Error('could not fill the accept queue of the black hole');
  } catch (error) {
    await close();
    throw error;
  }
}
