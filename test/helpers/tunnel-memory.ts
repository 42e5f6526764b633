// Set-up of the tests that pass a large stream through a CONNECT tunnel of a proxy process and
// measure how far its memory grows: an origin that takes one warm-up connection first, and a
// measured tunnel. Everything they open, they close.
import { once } from 'node:events';
import type net from 'node:net';
import { openTunnel, startRawOrigin } from './net.js';
import { samplePeak, startProxyProcess } from './proxy-process.js';

/** The warm-up transfer: enough for start-up allocations to be made before the baseline is taken. */
const WARM_UP_BYTES = 1024 * 1024;

/**
 * A raw origin whose first connection (the warm-up's, see {@link measureTunnel}) is read to its
 * end and closed; every later one goes to `onSocket`.
 */
export async function startWarmOrigin(onSocket: (socket: net.Socket) => void) {
  let first = true;
  return startRawOrigin((socket) => {
    if (first) {
      first = false;
      socket.resume();
      socket.on('end', () => socket.end());
    } else {
      onSocket(socket);
    }
  });
}

/** What {@link measureTunnel} measured: the proxy's RSS before the tunnel and its peak while `body` ran, in bytes. */
export interface RssGrowth {
  baseline: number;
  peak: number;
}

/**
 * Starts a proxy process with `chain`, passes a warm-up transfer through a tunnel to `originPort`
 * (an origin from {@link startWarmOrigin}), takes the baseline RSS, then opens a tunnel and runs
 * `body` with it while sampling the RSS; the peak is taken when `body` resolves. The tunnel and
 * the proxy are closed after, whatever happens.
 */
export async function measureTunnel(
  chain: unknown[],
  originPort: number,
  body: (tunnel: { socket: net.Socket; head: string }) => Promise<void>,
): Promise<RssGrowth> {
  const proxy = await startProxyProcess(chain);
  try {
    await warmUp(proxy.port, originPort);
    const baseline = proxy.rss();
    const sampler = samplePeak(() => proxy.rss());
    try {
      const tunnel = await openTunnel(proxy.port, `127.0.0.1:${originPort}`);
      try {
        await body(tunnel);
        return { baseline, peak: sampler.stop() };
      } finally {
        tunnel.socket.destroy();
      }
    } finally {
      sampler.stop();
    }
  } finally {
    await proxy.close();
  }
}

/** A small transfer through a tunnel, so start-up allocations are not counted as growth. */
async function warmUp(proxyPort: number, originPort: number): Promise<void> {
  const { socket } = await openTunnel(proxyPort, `127.0.0.1:${originPort}`);
  try {
    socket.end(Buffer.alloc(WARM_UP_BYTES, 7));
    socket.resume();
    await once(socket, 'end');
  } finally {
    socket.destroy();
  }
}
