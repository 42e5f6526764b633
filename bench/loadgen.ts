// Fallback load generator (when wrk is not installed), run as a child process: `concurrency`
// clients, each looping "new connection, one absolute-form GET through the proxy, read the whole
// response until the close" for `seconds`. Prints one JSON line with the counts.
import net from 'node:net';

const [proxyPort, originPort, concurrency, seconds] = process.argv.slice(2).map(Number) as [number, number, number, number];
const request = Buffer.from(`GET http://127.0.0.1:${originPort}/ HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\nConnection: close\r\n\r\n`);
const deadline = performance.now() + seconds * 1000;
let ok = 0;
let non2xx = 0;
let errors = 0;

function once(): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: proxyPort, noDelay: true });
    let first: Buffer | undefined;
    // Like wrk: no half-close; the proxy's FIN after the response makes this socket end too.
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => (first ??= chunk));
    socket.on('error', () => {});
    socket.on('close', (hadError) => {
      if (hadError || !first) errors++;
      else if (/^HTTP\/1\.[01] 2/.test(first.toString('latin1', 0, 12))) ok++;
      else non2xx++;
      resolve();
    });
  });
}

async function client(): Promise<void> {
  while (performance.now() < deadline) await once();
}

const start = performance.now();
await Promise.all(Array.from({ length: concurrency }, client));
const elapsed = (performance.now() - start) / 1000;
process.stdout.write(`${JSON.stringify({ ok, non2xx, errors, seconds: elapsed })}\n`);
