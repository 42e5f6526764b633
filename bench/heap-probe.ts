// Preloaded (node --expose-gc --import) into the proxies of the idle-tunnel phase only: on
// SIGUSR2 it runs a full GC and writes process.memoryUsage() to $BENCH_PROBE_DIR/<pid>.json, so
// the bench can tell live memory per tunnel from garbage not yet collected. It changes nothing else.
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.env.BENCH_PROBE_DIR;
const gc = (globalThis as { gc?: () => void }).gc;
if (dir && gc) {
  process.on('SIGUSR2', () => {
    gc();
    gc();
    const file = path.join(dir, `${process.pid}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(process.memoryUsage()));
    renameSync(`${file}.tmp`, file);
  });
}
