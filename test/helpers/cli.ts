// Running the compiled CLI as a child process, for the CLI tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** The compiled CLI (ava runs from the repository root). */
export const CLI = path.join(process.cwd(), 'dist/src/cli.js');

/** Runs the CLI to its exit (killed after 20 s as a safety net); returns code and output. */
export function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runToExit(spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/**
 * Collects a child's output until it exits (killed after `killAfterMs` as a safety net); returns its
 * code and output. After 'exit' it waits a bounded while for 'close': a child may exit before its
 * last output was read, and a program's own helpers (a browser's) may hold the pipes a little longer.
 */
export async function runToExit(
  child: ChildProcess & { stdout: Readable; stderr: Readable },
  killAfterMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (stdout += chunk));
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const closed = once(child, 'close');
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  let drained: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((resolve) => (drained = setTimeout(resolve, 5_000)))]);
  clearTimeout(drained);
  return { code, stdout, stderr };
}
