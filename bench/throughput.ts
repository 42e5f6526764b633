// Tunnel throughput: N bytes client → origin, or origin → client, through one tunnel.
import { pump } from './pump.js';
import { treeCpuMs } from './procs.js';
import { openTunnel, type Tunnel } from './tunnel.js';

export interface Transfer {
  /** MB/s (10^6 bytes per second) over the whole transfer. */
  mbps: number;
  bytes: number;
  seconds: number;
  /** False if the time limit stopped it (then the rate is over the bytes sent so far). */
  complete: boolean;
  /** CPU seconds the proxy process (and its children, if any) spent during the transfer. */
  proxyCpuS: number;
}

function header(kind: 'U' | 'D', bytes: number): Buffer {
  const buffer = Buffer.alloc(9);
  buffer.write(kind, 0, 'latin1');
  buffer.writeBigUInt64BE(BigInt(bytes), 1);
  return buffer;
}

/** Runs one transfer through the proxy; `direction` is `up` (client → origin) or `down`. */
export async function transfer(
  proxyPort: number,
  proxyPid: number,
  originPort: number,
  direction: 'up' | 'down',
  bytes: number,
  timeoutMs: number,
  extraHeaders = '',
): Promise<Transfer> {
  return transferThrough(openTunnel(proxyPort, originPort, 10_000, extraHeaders), proxyPid, direction, bytes, timeoutMs);
}

/** Runs one transfer through a tunnel being opened (any way in: CONNECT, CONNECT over TLS, SOCKS5) to the throughput origin. */
export async function transferThrough(
  opening: Promise<Tunnel>,
  proxyPid: number,
  direction: 'up' | 'down',
  bytes: number,
  timeoutMs: number,
): Promise<Transfer> {
  const { socket, leftover } = await opening;
  const cpu0 = treeCpuMs(proxyPid);
  const start = process.hrtime.bigint();
  let counted = leftover.length;
  let sentSoFar = () => 0; // bytes handed to the socket, for a partial rate if the time limit hits
  const complete = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      resolve(ok);
    };
    socket.on('close', () => done(direction === 'down' ? counted >= bytes : false));
    if (direction === 'up') {
      socket.on('data', (chunk: Buffer) => chunk.includes(0x4b /* K */) && done(true));
      socket.write(header('U', bytes));
      const progress = pump(socket, bytes, () => {});
      sentSoFar = progress;
    } else {
      socket.on('data', (chunk: Buffer) => {
        counted += chunk.length;
        if (counted >= bytes) done(true);
      });
      socket.write(header('D', bytes));
    }
    socket.resume();
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const proxyCpuS = (treeCpuMs(proxyPid) - cpu0) / 1000;
  socket.destroy();
  const moved = complete ? bytes : direction === 'up' ? sentSoFar() : counted;
  return { mbps: moved / 1e6 / seconds, bytes: moved, seconds, complete, proxyCpuS };
}
