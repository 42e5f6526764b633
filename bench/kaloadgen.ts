// Keep-alive load generator (when wrk is not installed), run as a child process: `concurrency`
// clients, each on one kept-alive connection, looping "GET, read the whole response
// (Content-Length)" for `seconds`; absolute-form through the proxy on `proxyPort`, or
// origin-form straight to the origin when `proxyPort` is 0. A client whose connection is closed
// (Connection: close, or just closed) opens a new one. Prints one JSON line with the counts and
// the p50/p99 latency (request written → response complete). Optional 5th and 6th arguments: the
// path at the origin (default /) and a JSON object of extra request fields.
import net from 'node:net';

const [proxyPort, originPort, concurrency, seconds] = process.argv.slice(2, 6).map(Number) as [number, number, number, number];
const originPath = process.argv[6] ?? '/';
const fields = Object.entries(JSON.parse(process.argv[7] ?? '{}') as Record<string, string>)
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');
const target = proxyPort ? `http://127.0.0.1:${originPort}${originPath}` : originPath;
const request = Buffer.from(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n${fields}\r\n`);
const deadline = performance.now() + seconds * 1000;
const latencies: number[] = [];
let ok = 0;
let non2xx = 0;
let errors = 0;

/** One connection: requests until the deadline or until the connection closes. */
function connection(): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: proxyPort || originPort, noDelay: true });
    let buffer: Buffer = Buffer.alloc(0);
    let sent = 0;
    let busy = false;
    const send = () => {
      if (performance.now() >= deadline) return socket.destroy();
      busy = true;
      sent = performance.now();
      socket.write(request);
    };
    socket.on('connect', send);
    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.toString('latin1', 0, end);
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!length) return; // no length: the response ends with the connection
      if (buffer.length < end + 4 + Number(length[1])) return;
      buffer = buffer.subarray(end + 4 + Number(length[1]));
      busy = false;
      latencies.push(performance.now() - sent);
      if (/^HTTP\/1\.[01] 2/.test(head)) ok++;
      else non2xx++;
      if (/\r\nconnection:\s*close/i.test(head)) socket.destroy();
      else send();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (busy) {
        if (buffer.length) {
          latencies.push(performance.now() - sent);
          if (/^HTTP\/1\.[01] 2/.test(buffer.toString('latin1', 0, 12))) ok++;
          else non2xx++;
        } else errors++;
      }
      resolve();
    });
  });
}

async function client(): Promise<void> {
  while (performance.now() < deadline) await connection();
}

const start = performance.now();
await Promise.all(Array.from({ length: concurrency }, client));
const elapsed = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const at = (q: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : undefined);
process.stdout.write(`${JSON.stringify({ ok, non2xx, errors, seconds: elapsed, p50Ms: at(0.5), p99Ms: at(0.99) })}\n`);
