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

/** Collects a child's output until it exits (killed after 20 s as a safety net); returns code and output. */
export async function runToExit(
  child: ChildProcess & { stdout: Readable; stderr: Readable },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (stdout += chunk));
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}
