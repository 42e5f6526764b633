// The proxies under test, each started as a child process listening on 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startChild, startChildOnPort, stopChild, type Child } from './procs.js';
import type { Contender } from './rounds.js';

export interface Proxy {
  /** Column name in the tables. */
  name: string;
  child: Child;
  port: number;
  /** Started with bench/heap-probe.js (answers SIGUSR2 with its memory usage after a full GC). */
  probed?: boolean;
}

const DIST = path.dirname(path.dirname(fileURLToPath(import.meta.url))); // dist/
const ROOT = path.dirname(DIST);
const LISTENING = /^\S+ listening on http:\/\/127\.0\.0\.1:(\d+)$/;

/** The CLI's script, and the Node flags its `#!/usr/bin/env -S node …` line gives it: proxyline runs as the `proxyline` command and `npm start` run it. */
export const CLI = path.join(DIST, 'src/cli.js');
export const CLI_NODE_FLAGS: readonly string[] = (/^#!\/usr\/bin\/env -S node (.*)$/m.exec(readFileSync(CLI, 'utf8').split('\n', 1)[0]!)?.[1] ?? '')
  .split(' ')
  .filter(Boolean);

/** With `probe`, the child gets --expose-gc and bench/heap-probe.js (see there). The CLI gets its shebang's flags. */
async function nodeProxy(name: string, script: string, args: string[], tmp: string, probe: boolean): Promise<Proxy> {
  const node = [
    ...(script === CLI ? CLI_NODE_FLAGS : []),
    ...(probe ? ['--expose-gc', '--import', pathToFileURL(path.join(DIST, 'bench/heap-probe.js')).href] : []),
  ];
  const env = probe ? { ...process.env, BENCH_PROBE_DIR: tmp } : process.env;
  const child = await startChild(name, process.execPath, [...node, script, ...args], LISTENING, path.join(tmp, `${name}.stderr.log`), env);
  return { name, child, port: Number(LISTENING.exec(child.ready)![1]), probed: probe };
}

/** The repository's plugins.json without the `logger` plugin, written to the temp dir; its path. */
export function noLoggerConfig(tmp: string): string {
  const json = JSON.parse(readFileSync(path.join(ROOT, 'plugins.json'), 'utf8')) as { plugins: { name: string }[] };
  json.plugins = json.plugins.filter((plugin) => plugin.name !== 'logger');
  delete (json as { $schema?: string }).$schema;
  const config = path.join(tmp, 'plugins.nolog.json');
  writeFileSync(config, JSON.stringify(json, null, 2));
  return config;
}

/**
 * proxyline with the repository's plugins.json as shipped (`full`: the logger on), or without the
 * logger; `workers` above 1 adds `--workers` (its column is named `--workers N`). The logger
 * writes its records to stderr, which goes to a file (the temp dir's `<name>.stderr.log`, emptied
 * at each start), as with `npm start > log 2>&1`.
 */
export function startProxyline(tmp: string, full: boolean, probe = false, workers = 1): Promise<Proxy> {
  const name = workers > 1 ? `--workers ${workers}` : full ? 'proxyline' : 'no-logger';
  const extra = workers > 1 ? ['--workers', String(workers)] : [];
  const config = full ? path.join(ROOT, 'plugins.json') : noLoggerConfig(tmp);
  rmSync(path.join(tmp, `${name}.stderr.log`), { force: true });
  return nodeProxy(name, CLI, ['--host', '127.0.0.1', '--port', '0', '--config', config, '--grace-period', '0', ...extra], tmp, probe);
}

/** proxyline with a given plugins.json. */
export function startProxylineWith(name: string, config: string, tmp: string): Promise<Proxy> {
  return nodeProxy(name, CLI, ['--host', '127.0.0.1', '--port', '0', '--config', config, '--grace-period', '0'], tmp, false);
}

/** The minimal Node splice (bench/baseline.ts), the reference the ratios are taken over. */
export function startBaseline(tmp: string, probe = false): Promise<Proxy> {
  return nodeProxy('splice', path.join(DIST, 'bench/baseline.js'), ['--port', '0'], tmp, probe);
}

/** The `proxy` npm package (bench/proxy-package.ts). */
export function startProxyPackage(tmp: string, probe = false): Promise<Proxy> {
  return nodeProxy('proxy-package', path.join(DIST, 'bench/proxy-package.js'), ['--port', '0'], tmp, probe);
}

/** The path of `command` if it is on PATH. */
export function which(command: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A TCP port on 127.0.0.1 free a moment ago (for servers that cannot be told port 0). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * squid in the foreground (-N) with a minimal config: forward proxy on 127.0.0.1, everything
 * allowed from localhost, nothing cached, pid and logs in a temp dir. Run as root, squid drops to
 * its own user (`proxy` on Debian), so that dir is world-writable.
 */
export async function startSquid(tmp: string, binary: string): Promise<Proxy> {
  const port = await freePort();
  const dir = path.join(tmp, 'squid');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  const config = path.join(dir, 'squid.conf');
  writeFileSync(
    config,
    [
      `http_port 127.0.0.1:${port}`,
      'acl local src 127.0.0.1/32',
      'http_access allow local',
      'http_access deny all',
      // Idle tunnels take two descriptors each; squid's default cap comes from the build.
      'max_filedescriptors 16384',
      'cache deny all',
      'cache_mem 0 MB',
      `pid_filename ${dir}/squid.pid`,
      `cache_log ${dir}/cache.log`,
      'access_log none',
      'cache_store_log none',
      `coredump_dir ${dir}`,
      'shutdown_lifetime 0 seconds',
      'via off',
      'forwarded_for delete',
      '',
    ].join('\n'),
  );
  const child = await startChildOnPort('squid', binary, ['-N', '-f', config], port, path.join(tmp, 'squid.stderr.log'), 30_000);
  return { name: 'squid', child, port };
}

/** The contenders a section compares; each starts a fresh process per round. */
export type ContenderName = 'proxyline' | 'no-logger' | '--workers 2' | 'splice' | 'squid' | 'proxy-package';

/** Where squid is, if installed (it lives in /usr/sbin, often not on a user's PATH). */
export function squidBinary(): string | undefined {
  return which('squid') ?? ['/usr/sbin/squid', '/usr/local/sbin/squid'].find((p) => which(p));
}

/** The named contenders in the given order; squid, when not installed, says so instead of starting. With `probe`, Node ones get the heap probe. */
export function contenders(tmp: string, names: ContenderName[], probe = false): Contender<Proxy>[] {
  const squid = squidBinary();
  const starters: Record<ContenderName, (() => Promise<Proxy>) | string> = {
    proxyline: () => startProxyline(tmp, true, probe),
    'no-logger': () => startProxyline(tmp, false, probe),
    '--workers 2': () => startProxyline(tmp, false, probe, 2),
    splice: () => startBaseline(tmp, probe),
    squid: squid ? () => startSquid(tmp, squid) : 'not installed (apt-get install -y squid)',
    'proxy-package': () => startProxyPackage(tmp, probe),
  };
  return names.map((name) => ({ name, start: starters[name], stop: (proxy: Proxy) => stopChild(proxy.child) }));
}
