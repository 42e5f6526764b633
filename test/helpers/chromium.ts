// Headless Chromium for the tests that open a page as a person would: no npm package, the browser
// the system has (Debian's `chromium`), driven by its command-line switches.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { runToExit } from './cli.js';

/** The names a Chromium binary goes by on Debian, Ubuntu and elsewhere. */
const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** The first Chromium on PATH, or undefined when there is none. */
export function findChromium(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    for (const name of NAMES) {
      const file = path.join(dir, name);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not this one
      }
    }
  }
  return undefined;
}

/**
 * Runs headless Chromium on a page with extra switches (`--dump-dom`, `--screenshot=…`), with its own
 * profile folder so that runs never share state; killed after 60 s as a safety net. Returns its output.
 */
export function runChromium(binary: string, profile: string, page: string, switches: string[]) {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`,
    ...switches,
    `file://${page}`,
  ];
  // On a loaded 2-core machine (the whole suite at once) a large screenshot once took over 20 s
  // and was killed there; the limit only stops a hung browser.
  return runToExit(spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);
}

/** The width and height in a PNG's header; throws when the bytes are not a PNG. */
export function pngSize(png: Buffer): { width: number; height: number } {
  if (png.length < 24 || png.toString('latin1', 1, 4) !== 'PNG' || png.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
