// Running the compiled CLI as a child process, for the CLI tests.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';

/** The compiled CLI (ava runs from the repository root). */
export const CLI = path.join(process.cwd(), 'dist/src/cli.js');

/** Runs the CLI to its exit (killed after 20 s as a safety net); returns code and output. */
export async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}
