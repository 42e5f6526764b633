// Opening a tunnel to an origin through a proxy, from the client side: an HTTP CONNECT (over TCP
// or over TLS to an HTTPS proxy listener) or a SOCKS5 CONNECT.
import net from 'node:net';
import tls from 'node:tls';
import { treeCpuMs } from './procs.js';

export interface Tunnel {
  socket: net.Socket;
  /** Bytes that arrived after the proxy's answer (tunnel data already). */
  leftover: Buffer;
}

/** Reads the proxy's answer: `parse` returns the answer's length once whole, -1 while more is needed, or throws why it is a refusal. */
function handshake(socket: net.Socket, label: string, timeoutMs: number, parse: (answer: Buffer) => number): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    let answer = Buffer.alloc(0);
    const fail = (why: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`${label}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('error', (error) => fail(error.message));
    socket.on('close', () => fail('closed before an answer'));
    const onData = (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
      let end: number;
      try {
        end = parse(answer);
      } catch (error) {
        return fail((error as Error).message);
      }
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.removeAllListeners('error').removeAllListeners('close');
      socket.on('error', () => {});
      socket.pause();
      resolve({ socket, leftover: answer.subarray(end) });
    };
    socket.on('data', onData);
  });
}

/** The end of a `200` response head to a CONNECT, or -1 while it is incomplete. */
function connectAnswer(head: Buffer): number {
  const end = head.indexOf('\r\n\r\n');
  if (end < 0) return -1;
  const status = head.toString('latin1', 0, head.indexOf('\r\n'));
  if (!/^HTTP\/1\.[01] 200/.test(status)) throw new Error(`answered "${status}"`);
  return end + 4;
}

function sendConnect(socket: net.Socket, targetPort: number, extraHeaders: string): void {
  socket.write(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n${extraHeaders}\r\n`);
}

/** CONNECTs to 127.0.0.1:`targetPort` through the proxy on `proxyPort`; resolves on a 200. `extraHeaders`: CRLF-terminated lines. */
export function openTunnel(proxyPort: number, targetPort: number, timeoutMs = 10_000, extraHeaders = ''): Promise<Tunnel> {
  const socket = net.connect({ host: '127.0.0.1', port: proxyPort, noDelay: true });
  sendConnect(socket, targetPort, extraHeaders); // buffered until connected
  return handshake(socket, `CONNECT through :${proxyPort}`, timeoutMs, connectAnswer);
}

/** The same CONNECT over TLS to an HTTPS proxy listener whose certificate `ca` signs (for localhost / 127.0.0.1). */
export function openTlsTunnel(proxyPort: number, targetPort: number, ca: Buffer, timeoutMs = 10_000): Promise<Tunnel> {
  const socket = tls.connect({ host: '127.0.0.1', port: proxyPort, ca, servername: 'localhost' });
  socket.setNoDelay(true);
  sendConnect(socket, targetPort, '');
  return handshake(socket, `CONNECT over TLS through :${proxyPort}`, timeoutMs, connectAnswer);
}

/**
 * A SOCKS5 CONNECT (RFC 1928) to 127.0.0.1:`targetPort` without authentication. The greeting and
 * the request go in one write (the server answers the greeting first; nothing waits on it).
 */
export function openSocksTunnel(socksPort: number, targetPort: number, timeoutMs = 10_000): Promise<Tunnel> {
  const socket = net.connect({ host: '127.0.0.1', port: socksPort, noDelay: true });
  const request = Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, targetPort >> 8, targetPort & 0xff]);
  socket.write(request);
  return handshake(socket, `SOCKS5 CONNECT through :${socksPort}`, timeoutMs, (answer) => {
    if (answer.length < 2) return -1;
    if (answer[0] !== 5 || answer[1] !== 0) throw new Error(`greeting answered ${answer.subarray(0, 2).toString('hex')}`);
    if (answer.length < 2 + 5) return -1;
    if (answer[3] !== 0) throw new Error(`CONNECT answered reply ${answer[3]}`);
    const length = answer[5] === 1 ? 10 : answer[5] === 4 ? 22 : 7 + answer[6]!;
    return answer.length - 2 >= length ? 2 + length : -1;
  });
}

/** Opens and closes `total` tunnels, `concurrency` at a time; tunnels per second. */
export async function setupRate(open: () => Promise<Tunnel>, total: number, concurrency: number): Promise<number> {
  let started = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (started < total) {
      started++;
      const { socket } = await open();
      socket.destroy();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** A new-tunnel run: the rate, and what each tunnel cost the proxy. */
export interface SetupMeasure {
  /** Tunnels opened and closed per second. */
  rate: number;
  /** Proxy CPU (its process and children) per tunnel, µs. */
  cpuUsPerTunnel: number;
}

/**
 * `warmup` tunnels first, not counted, then `total` measured: the setup path of a fresh proxy
 * process runs once per tunnel, so without a warm-up a Node proxy is measured while its JIT is
 * still compiling that path (a cold proxyline spends two to three times its warm CPU per tunnel
 * over the first few thousand), which a long-running proxy pays once. Every contender gets the same warm-up.
 */
export async function measureSetup(open: () => Promise<Tunnel>, pid: number, warmup: number, total: number, concurrency: number): Promise<SetupMeasure> {
  if (warmup > 0) await setupRate(open, warmup, concurrency);
  const cpu = treeCpuMs(pid);
  const rate = await setupRate(open, total, concurrency);
  return { rate, cpuUsPerTunnel: ((treeCpuMs(pid) - cpu) * 1000) / total };
}
