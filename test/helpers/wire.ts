// Raw-socket helpers that do not depend on timing: read until the proxy's FIN, poll with a bound.
import { once } from 'node:events';
import net from 'node:net';
import { connectTo } from './net.js';

/** What a raw exchange saw: the bytes received before the proxy's FIN, and whether it ended or was reset. */
export interface Exchange {
  text: string;
  /** 'end': the proxy sent FIN; 'close': the socket closed without a FIN being seen (reset or destroy). */
  how: 'end' | 'close';
}

/**
 * Writes `data` to the proxy and collects everything until the proxy ends (FIN) or closes the
 * connection, then closes our side. `timeoutMs` is only a safety limit.
 */
export async function sendAndCollect(port: number, data: string | Buffer, timeoutMs = 10_000): Promise<Exchange> {
  const socket = await connectTo(port);
  try {
    const result = collect(socket, timeoutMs);
    socket.write(data);
    return await result;
  } finally {
    socket.destroy();
  }
}

/** Collects a socket's bytes until 'end' or 'close' (or the safety timeout, which rejects). */
export function collect(socket: net.Socket, timeoutMs = 10_000): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(
      () => finish(new Error(`no end within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => chunks.push(chunk);
    const onEnd = () => finish(undefined, 'end');
    const onClose = () => finish(undefined, 'close');
    const finish = (error?: Error, how?: 'end' | 'close') => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve({ text: Buffer.concat(chunks).toString('latin1'), how: how! });
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onClose);
  });
}

/** Polls `predicate` every `intervalMs` until it holds; false if it still fails after `attempts` tries. */
export async function pollUntil(predicate: () => boolean, attempts = 200, intervalMs = 25): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (predicate()) return true;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return predicate();
}

/** Resolves when the socket has closed (immediately if it already has). */
export async function closed(socket: net.Socket): Promise<void> {
  if (socket.destroyed && socket.closed) return;
  await once(socket, 'close');
}

/** Splits an HTTP/1.1 response text into status line, header lines and body. */
export function parseResponse(text: string): { statusLine: string; headers: string[]; body: string } {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return { statusLine: text.split('\r\n')[0] ?? '', headers: [], body: '' };
  const [statusLine = '', ...headers] = text.slice(0, end).split('\r\n');
  return { statusLine, headers, body: text.slice(end + 4) };
}

/** A raw origin that records every byte it receives, per connection, and answers with `answer` once a full head arrived. */
export function recordingOrigin(answer?: string) {
  const received: Buffer[] = [];
  let connections = 0;
  const onSocket = (socket: net.Socket) => {
    connections++;
    const index = received.push(Buffer.alloc(0)) - 1;
    socket.on('data', (chunk: Buffer) => {
      received[index] = Buffer.concat([received[index]!, chunk]);
      if (answer !== undefined && received[index].includes('\r\n\r\n') && !socket.writableEnded) socket.end(answer);
    });
    socket.on('end', () => {
      if (!socket.writableEnded) socket.end();
    });
  };
  return {
    onSocket,
    received,
    get connections() {
      return connections;
    },
    get totalBytes() {
      return received.reduce((sum, buffer) => sum + buffer.length, 0);
    },
  };
}
