import os from 'node:os';

/** The most workers `--workers` accepts: far past any core count, low enough to catch a typo. */
export const MAX_WORKERS = 1024;

/**
 * The worker count `--workers` asks for: an integer from 1 to {@link MAX_WORKERS}, or `auto` for
 * `os.availableParallelism()`. Undefined for anything else (the CLI exits 2).
 */
export function parseWorkers(text: string): number | undefined {
  if (text === 'auto') return Math.min(os.availableParallelism(), MAX_WORKERS);
  if (!/^\d+$/.test(text)) return undefined;
  const count = Number(text);
  return count >= 1 && count <= MAX_WORKERS ? count : undefined;
}
