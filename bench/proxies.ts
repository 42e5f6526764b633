// The proxies under test, each started as a child process listening on 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startChild, startChildOnPort, type Child } from './procs.js';

export interface Proxy {
  /** Column name in the tables. */
  name: string;
  child: Child;
  port: number;
}

const DIST = path.dirname(path.dirname(fileURLToPath(import.meta.url))); // dist/
const ROOT = path.dirname(DIST);
const LISTENING = /^\S+ listening on http:\/\/127\.0\.0\.1:(\d+)$/;

/** With `probe`, the child gets --expose-gc and bench/heap-probe.js (see there). */
async function nodeProxy(name: string, script: string, args: string[], tmp: string, probe: boolean): Promise<Proxy> {
  const node = probe ? ['--expose-gc', '--import', pathToFileURL(path.join(DIST, 'bench/heap-probe.js')).href] : [];
  const env = probe ? { ...process.env, BENCH_PROBE_DIR: tmp } : process.env;
  const child = await startChild(name, process.execPath, [...node, script, ...args], LISTENING, path.join(tmp, `${name}.stderr.log`), env);
  return { name, child, port: Number(LISTENING.exec(child.ready)![1]) };
}

/** proxyline with the repository's plugins.json, minus the logger unless `full`; `workers` above 1 adds `--workers`. */
export function startProxyline(tmp: string, full: boolean, probe = false, workers = 1): Promise<Proxy> {
  const name = (full ? 'proxyline+log' : 'proxyline') + (workers > 1 ? ` --workers ${workers}` : '');
  const extra = workers > 1 ? ['--workers', String(workers)] : [];
  let config = path.join(ROOT, 'plugins.json');
  if (!full) {
    const json = JSON.parse(readFileSync(config, 'utf8')) as { plugins: { name: string }[] };
    json.plugins = json.plugins.filter((plugin) => plugin.name !== 'logger');
    delete (json as { $schema?: string }).$schema;
    config = path.join(tmp, 'plugins.nolog.json');
    writeFileSync(config, JSON.stringify(json, null, 2));
  }
  return nodeProxy(
    name,
    path.join(DIST, 'src/cli.js'),
    ['--host', '127.0.0.1', '--port', '0', '--config', config, '--grace-period', '0', ...extra],
    tmp,
    probe,
  );
}

/** proxyline with a given plugins.json. */
export function startProxylineWith(name: string, config: string, tmp: string): Promise<Proxy> {
  return nodeProxy(name, path.join(DIST, 'src/cli.js'), ['--host', '127.0.0.1', '--port', '0', '--config', config, '--grace-period', '0'], tmp, false);
}

export function startBaseline(tmp: string, probe = false): Promise<Proxy> {
  return nodeProxy('baseline', path.join(DIST, 'bench/baseline.js'), ['--port', '0'], tmp, probe);
}

/** The `proxy` npm package (bench/proxy-package.ts). */
export function startProxyPackage(tmp: string): Promise<Proxy> {
  return nodeProxy('proxy-package', path.join(DIST, 'bench/proxy-package.js'), ['--port', '0'], tmp, false);
}

/** The path of `command` if it is on PATH. */
export function which(command: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** tinyproxy in the foreground with a config allowing CONNECT to any port from 127.0.0.1. */
export async function startTinyproxy(tmp: string, binary: string): Promise<Proxy> {
  const port = await freePort();
  const config = path.join(tmp, 'tinyproxy.conf');
  // No ConnectPort line: CONNECT to every port is allowed.
  writeFileSync(
    config,
    [`Port ${port}`, 'Listen 127.0.0.1', 'Allow 127.0.0.1', 'Timeout 600', 'MaxClients 6000', 'LogLevel Error', 'DisableViaHeader Yes', ''].join('\n'),
  );
  const child = await startChildOnPort('tinyproxy', binary, ['-d', '-c', config], port, path.join(tmp, 'tinyproxy.stderr.log'));
  return { name: 'tinyproxy', child, port };
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
