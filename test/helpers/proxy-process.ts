// Runs the proxy CLI as a child process, so its memory can be measured on its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './net.js';

export interface ProxyProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  /** The SOCKS5 listener's port, when started with `--socks-port` (from its ready line). */
  socksPort?: number;
  /** Resident set size now, in bytes (VmRSS from /proc/<pid>/status). */
  rss(): number;
  /** What the child wrote to stderr so far (the first 10,000 characters). */
  stderr(): string;
  /** What the child wrote to stdout so far (the first 10,000 characters): its ready lines. */
  stdout(): string;
  /** The temporary plugins.json it was started with (a reload test rewrites it). */
  config: string;
  /** Resolves with the first match of `pattern` in stdout, once it is there (rejects after 15 s). */
  waitForStdout(pattern: RegExp): Promise<RegExpExecArray>;
  /** Kills the child (SIGKILL) and removes its temporary config. */
  close(): Promise<void>;
}

/** How to start the child. */
export interface ProxyProcessOptions {
  /** Open file descriptors the child may have (`ulimit -n`, through /bin/sh, which then execs node: same pid). */
  fdLimit?: number;
  /** More CLI flags, after --host, --port and --config (e.g. `['--grace-period', '1500']`). */
  args?: string[];
}

/** Starts `node dist/src/cli.js --port 0 --config <temp plugins.json> [args]` and waits for its listening line. */
export async function startProxyProcess(plugins: unknown[], options: ProxyProcessOptions = {}): Promise<ProxyProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'proxyline-test-'));
  const config = path.join(dir, 'plugins.json');
  writeFileSync(config, JSON.stringify({ plugins }));
  const args = [path.join(ROOT, 'dist/src/cli.js'), '--host', '127.0.0.1', '--port', '0', '--config', config, ...(options.args ?? [])];
  const [command, argv] =
    options.fdLimit === undefined ? [process.execPath, args] : ['/bin/sh', ['-c', `ulimit -n ${options.fdLimit} && exec "$0" "$@"`, process.execPath, ...args]];
  const child = spawn(command, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    if (output.length < 10_000) output += chunk.toString();
  });
  const waitForStdout = async (pattern: RegExp) => {
    // Bounded: each turn waits for more output, and the signal rejects after 15 s.
    const signal = AbortSignal.timeout(15_000);
    for (let match = pattern.exec(output); ; match = pattern.exec(output)) {
      if (match) return match;
      await once(child.stdout, 'data', { signal });
    }
  };
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 10_000) stderr += chunk.toString();
  });
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // With --socks-port, ready means both lines are out.
    const socks = (options.args ?? []).includes('--socks-port');
    let socksPort: number | undefined;
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`proxy did not start; stderr: ${stderr}`)), 15_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`proxy exited with ${code}; stderr: ${stderr}`));
      });
      child.stdout.on('data', () => {
        const match = /proxyline listening on http:\/\/127\.0\.0\.1:(\d+)\n/.exec(output);
        const socksMatch = /proxyline socks5 on socks5:\/\/127\.0\.0\.1:(\d+)\n/.exec(output);
        if (socksMatch) socksPort = Number(socksMatch[1]);
        if (match && (!socks || socksMatch)) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
    });
    const pid = child.pid!;
    return { child, pid, port, socksPort, rss: () => readRss(pid), stderr: () => stderr, stdout: () => output, waitForStdout, config, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function readRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error('no VmRSS in /proc status');
  return Number(match[1]) * 1024;
}

/** Samples `read()` every `intervalMs` and keeps the peak, until `stop()`. */
export function samplePeak(read: () => number, intervalMs = 50): { stop: () => number } {
  let peak = read();
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, read());
    } catch {
      // the process may be gone at the very end
    }
  }, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      try {
        peak = Math.max(peak, read());
      } catch {
        // ignore
      }
      return peak;
    },
  };
}
