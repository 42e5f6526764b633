// Keep-alive HTTP load through a proxy (or straight to the origin), with wrk if it is installed,
// else bench/kaloadgen.js.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { which } from './proxies.js';

export interface HttpLoad {
  /** 2xx responses per second. */
  rps: number;
  ok: number;
  non2xx: number;
  errors: number;
  seconds: number;
  /** Median and 99th percentile latency in ms. */
  p50Ms?: number;
  p99Ms?: number;
}

export interface HttpLoadOptions {
  concurrency: number;
  seconds: number;
  tmp: string;
  /** Request path at the origin (default `/`). */
  path?: string;
  /** Extra request fields (e.g. Proxy-Authorization). */
  headers?: Record<string, string>;
}

const WRK = process.env.BENCH_LOADGEN === 'node' ? undefined : which('wrk');

/** Why the Node generator runs instead of wrk, or undefined when wrk runs. */
export const WRK_MISSING = WRK ? undefined : process.env.BENCH_LOADGEN === 'node' ? 'BENCH_LOADGEN=node' : 'wrk is not installed (apt-get install -y wrk)';

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) =>
      error ? reject(new Error(`${path.basename(command)} failed: ${error.message} ${stderr}`)) : resolve(stdout),
    ),
  );
}

function ms(text: string | undefined): number | undefined {
  const match = text && /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[match[2]!]!;
}

function parseWrk(out: string, seconds: number): HttpLoad {
  const total = Number(/(\d+) requests in ([\d.]+)(ms|s|m)/.exec(out)?.[1] ?? NaN);
  const took = /requests in ([\d.]+)(ms|s|m)/.exec(out);
  const elapsed = took ? Number(took[1]) * ({ ms: 0.001, s: 1, m: 60 } as Record<string, number>)[took[2]!]! : seconds;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  const ok = total - non2xx;
  return {
    rps: ok / elapsed,
    ok,
    non2xx,
    errors,
    seconds: elapsed,
    p50Ms: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1]),
    p99Ms: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1]),
  };
}

export const KEEPALIVE_GENERATOR = WRK
  ? 'wrk -t2 (Lua script: absolute-form target, keep-alive, no Connection header; reconnects when a connection closes)'
  : 'bench/kaloadgen.js (Node, one kept-alive raw socket per client, child process) — NOT wrk';

/**
 * Keep-alive load: `concurrency` clients, each on one kept-alive connection, looping request →
 * whole response for `seconds`. Through the proxy on `proxyPort` (absolute-form target), or
 * straight to the origin when `proxyPort` is undefined (origin-form, the reference).
 * A client whose connection is closed reconnects and goes on.
 */
export async function keepAliveLoad(proxyPort: number | undefined, originPort: number, options: HttpLoadOptions): Promise<HttpLoad> {
  const { concurrency, seconds, tmp } = options;
  const target = options.path ?? '/';
  const limit = (seconds + 20) * 1000;
  if (!WRK) {
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kaloadgen.js');
    const args = [script, String(proxyPort ?? 0), String(originPort), String(concurrency), String(seconds), target, JSON.stringify(options.headers ?? {})];
    const out = JSON.parse(await run(process.execPath, args, limit)) as Omit<HttpLoad, 'rps'>;
    return { ...out, rps: out.ok / out.seconds };
  }
  const args = ['-t2', `-c${concurrency}`, `-d${seconds}s`, '--timeout', '5s', '--latency'];
  if (proxyPort === undefined) return parseWrk(await run(WRK, [...args, `http://127.0.0.1:${originPort}${target}`], limit), seconds);
  const lua = path.join(tmp, `wrk-keepalive-${originPort}.lua`);
  const extra = Object.entries(options.headers ?? {})
    .map(([name, value]) => `wrk.headers["${name}"] = "${value}"\n`)
    .join('');
  writeFileSync(lua, `wrk.method = "GET"\nwrk.path = "http://127.0.0.1:${originPort}${target}"\nwrk.headers["Host"] = "127.0.0.1:${originPort}"\n${extra}`);
  return parseWrk(await run(WRK, [...args, '-s', lua, `http://127.0.0.1:${proxyPort}/`], limit), seconds);
}
