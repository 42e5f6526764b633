// Child processes of the bench: start one, wait for its "listening" line, and kill them all at
// the end (also on error or Ctrl-C). Plus the /proc readings (RSS, open fds).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** The line that said it was ready. */
  ready: string;
  /** Everything it printed on stdout up to that line (a proxy with several listeners prints a line each). */
  output: string;
  /** Where its stderr goes. */
  log: string;
}

const children = new Set<ChildProcess>();

/** Spawns a child and resolves once a stdout line matches `ready` (or rejects after `timeoutMs`). */
export function startChild(
  name: string,
  command: string,
  args: string[],
  ready: RegExp,
  log: string,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 15_000,
): Promise<Child> {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', openSync(log, 'a')], env });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(`no ready line within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${name}: ${why} (stdout: ${JSON.stringify(out.slice(-300))}; stderr in ${log})`));
    };
    proc.on('error', (error) => fail(error.message));
    proc.on('exit', (code, signal) => fail(`exited early (${code ?? signal})`));
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => ready.test(l));
      if (!line) return;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      proc.on('exit', () => children.delete(proc));
      proc.stdout!.removeAllListeners('data');
      proc.stdout!.resume();
      resolve({ name, proc, pid: proc.pid!, ready: line, output: out, log });
    });
  });
}

/** Spawns a child that prints nothing when ready; resolves once 127.0.0.1:`port` accepts. */
export async function startChildOnPort(name: string, command: string, args: string[], port: number, log: string, timeoutMs = 10_000): Promise<Child> {
  const proc = spawn(command, args, { stdio: ['ignore', 'ignore', openSync(log, 'a')] });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  const ready = `${name} listening on http://127.0.0.1:${port}`;
  const child = { name, proc, pid: proc.pid!, ready, output: ready, log };
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (proc.exitCode !== null) break;
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(true));
      socket.on('error', () => resolve(false));
      socket.on('connect', () => socket.destroy());
    });
    if (ok) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`${name}: not accepting on port ${port} within ${timeoutMs} ms (stderr in ${log})`);
}

/** Kills a child and waits for it to be gone. */
export async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const gone = new Promise((resolve) => child.proc.once('exit', resolve));
  child.proc.kill('SIGKILL');
  await gone;
}

/** Kills every child still running (synchronous, for exit handlers). */
export function killAll(): void {
  for (const proc of children) proc.kill('SIGKILL');
}

/** Resident set size of a process, in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : NaN;
}

/** Open file descriptors of a process. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Cumulative CPU time (user + system) of a process, in ms. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** Cumulative CPU time of a process and of its descendants still running (a cluster primary's workers), in ms. */
export function treeCpuMs(pid: number): number {
  let total = cpuMs(pid);
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let children: string;
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    for (const child of children.split(' ').filter(Boolean)) {
      try {
        total += treeCpuMs(Number(child));
      } catch {
        // it exited meanwhile
      }
    }
  }
  return total;
}

/** What bench/heap-probe.js reports: process.memoryUsage() after a full GC, in bytes. */
export interface HeapProbe {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** Asks a child started with the heap probe for a full GC and its memory usage; undefined if it does not answer. */
export async function probeHeap(pid: number, dir: string, timeoutMs = 5000): Promise<HeapProbe | undefined> {
  const file = `${dir}/${pid}.json`;
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as HeapProbe;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}
