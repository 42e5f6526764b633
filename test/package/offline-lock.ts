// A lockfile that lets `npm install --offline <tarball>` work from the cache `npm ci` filled.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** One entry of a lockfile's `packages` map (only the fields read here are typed). */
interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  dev?: boolean;
  devOptional?: boolean;
  [field: string]: unknown;
}

/**
 * The package-lock.json of an empty project named `name`, already holding every package the
 * repository's lockfile resolves for proxyline's `dependencies` (same versions, same integrity).
 * npm 11 resolves a new dependency from the registry's full metadata, which `npm ci` never
 * downloads, so without it `npm install --offline <tarball>` fails with ENOTCACHED; with every
 * version pinned npm needs only the package tarballs, which `npm ci` left in the cache.
 */
export function seededLockfile(repoRoot: string, name: string): object {
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const picked: Record<string, LockEntry> = {};
  // Breadth-first over the dependency graph; each package is visited once, so this ends.
  const queue: [from: string, dependency: string][] = Object.keys(manifest.dependencies).map((dependency) => ['', dependency]);
  for (let next = queue.shift(); next; next = queue.shift()) {
    const [from, dependency] = next;
    const at = locate(lock.packages, from, dependency);
    if (!at) {
      if (from && lock.packages[from]?.optionalDependencies?.[dependency]) continue;
      throw new Error(`package-lock.json has no "${dependency}" for ${from || 'the root'}: run npm install to update it`);
    }
    if (picked[at]) continue;
    const { dev: _dev, devOptional: _devOptional, ...entry } = lock.packages[at]!;
    picked[at] = entry;
    for (const child of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies })) queue.push([at, child]);
  }
  return { name, lockfileVersion: 3, requires: true, packages: { '': { name }, ...picked } };
}

/** Where Node's lookup from the package at `from` finds `dependency`: its own node_modules, then its ancestors'. */
function locate(packages: Record<string, LockEntry>, from: string, dependency: string): string | undefined {
  for (let dir = from; ;) {
    const at = `${dir ? `${dir}/` : ''}node_modules/${dependency}`;
    if (packages[at]) return at;
    if (!dir) return undefined;
    const parent = dir.lastIndexOf('/node_modules/');
    dir = parent < 0 ? '' : dir.slice(0, parent);
  }
}
