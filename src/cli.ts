#!/usr/bin/env -S node --initial-heap-size=64
// --initial-heap-size: see docs/operations.md#node-flags. Without it, the start-up's own garbage
// makes V8 size the heap's limits small, and every read buffer of a busy tunnel (64 KiB each,
// counted against those limits) then sets off a full mark-compact many times a second.
// reflect-metadata must be loaded before tsyringe, so it is the first import of the entry point.
import 'reflect-metadata';
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { container } from 'tsyringe';
import type { AdminServer } from './admin.js';
import { CommandError, type CommandEntry } from './commands/command.js';
import { COMMANDS } from './commands/index.js';
import { AdminRoutes, AdminRouteTable } from './core/admin-routes.js';
import { answerMetricsRequests, reportReady, workerId } from './cluster/worker.js';
import { WorkerLogger } from './cluster/worker-logger.js';
import { MAX_WORKERS, parseWorkers } from './cluster/workers-flag.js';
import { ProxyError } from './core/errors.js';
import { Logger, StreamLogger } from './core/logger.js';
import { MetricsRegistry } from './plugins/metrics-registry.js';
import { createProxyFromConfig } from './proxy.js';
import { Reloader } from './reload.js';
import { readTlsFiles, type TlsCredentials } from './transports/tls-credentials.js';

const COMMAND_LIST = COMMANDS.map((command) => `  ${command.name.padEnd(22)}  ${command.summary}`).join('\n');

const HELP = `Usage: proxyline [options]
       proxyline <command> [arguments]

An HTTP/1.1 forward proxy built from the plugins listed in plugins.json.

Commands (proxyline <command> --help for each):
${COMMAND_LIST}

Options:
  --host <address>        address to listen on (default 127.0.0.1)
  --port <port>           port to listen on; 0 takes a free port (default 8080)
  --config <file>         plugins.json to load (default ./plugins.json)
  --grace-period <ms>     on SIGINT/SIGTERM, how long open connections may finish (default 10000)
  --max-connections <n>   client connections open at once; over it a new connection is closed at
                          once, nothing read or dialled (default 10000)
  --admin-port <port>     serve GET /metrics (Prometheus text, from the metrics plugin),
                          GET /healthz and the plugins' routes (the faults plugin's /faults)
                          on this port; 0 takes a free port (default: none)
  --admin-host <address>  address of the admin listener (default 127.0.0.1)
  --tls-cert <file>       speak TLS to clients (an HTTPS proxy: curl --proxy https://…) with this
                          PEM certificate chain; needs --tls-key. The handshake must end within
                          head-parser's headersTimeoutMs
  --tls-key <file>        the certificate's PEM private key (not encrypted); needs --tls-cert
  --socks-port <port>     also accept SOCKS5 clients on this port (CONNECT only; username/password
                          when proxy-auth is in the chain); 0 takes a free port (default: none)
  --socks-host <address>  address of the SOCKS5 listener (default 127.0.0.1)
  --workers <n|auto>      processes serving the port (node:cluster, round-robin); auto: one per
                          core; the primary serves the admin listener (default 1: no cluster)
  -h, --help              show this help

SIGHUP (or POST /reload on the admin listener) re-reads the config: new connections use the new
chain, open ones finish on theirs; an invalid file is logged and the running chain stays. With
--workers, the primary checks the file and passes SIGHUP on to every worker.

When ready it prints "proxyline listening on http://HOST:PORT" (https:// with --tls-cert), then,
with --socks-port, "proxyline socks5 on socks5://HOST:PORT", then, with --workers above 1,
"proxyline workers: N", then, with --admin-port, "proxyline admin on http://HOST:PORT".
Exit codes: 0 after a clean shutdown, 2 for invalid flags or configuration, 1 otherwise.
`;

/** Fails start-up with exit code 2 and a one-line reason. */
function usageError(message: string): never {
  process.stderr.write(`proxyline: ${message}\n`);
  process.exit(2);
}

function integer(name: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    usageError(`--${name}: expected an integer from ${min} to ${max}, found "${text}"`);
  }
  return Number(text);
}

function url(address: { host: string; port: number }, scheme = 'http'): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${scheme}://${host}:${address.port}`;
}

/** Runs a subcommand: its usage and input mistakes exit 2 with one line, like the proxy's flags. */
async function runCommand(entry: CommandEntry, args: string[]): Promise<void> {
  // A closed stdout (piped into head) fails the write, which reports it; this keeps the stream's
  // own 'error' event from crashing the process first.
  process.stdout.on('error', () => undefined);
  const command = await entry.load();
  try {
    await command.run(args);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return;
    if (!(error instanceof CommandError)) throw error;
    process.stderr.write(`proxyline: ${error.message}\n`);
    // exitCode rather than exit(): whatever is still being written to stdout gets out first.
    process.exitCode = 2;
  }
}

/** Reads and checks --tls-cert and --tls-key (both or neither); a bad file exits 2 naming it. */
async function tlsFiles(certFile: string | undefined, keyFile: string | undefined): Promise<TlsCredentials | undefined> {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (keyFile === undefined) usageError('--tls-cert: expected --tls-key too, found it missing');
  if (certFile === undefined) usageError('--tls-key: expected --tls-cert too, found it missing');
  try {
    return await readTlsFiles(certFile, keyFile);
  } catch (error) {
    if (error instanceof ProxyError && error.code === 'ERR_PROXY_CONFIG') usageError(error.message);
    throw error;
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const entry = COMMANDS.find((command) => command.name === args[0]);
  if (entry) return runCommand(entry, args.slice(1));
  if (args[0] !== undefined && !args[0].startsWith('-')) usageError(`unknown command "${args[0]}" (see --help)`);
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8080' },
        config: { type: 'string', default: './plugins.json' },
        'grace-period': { type: 'string', default: '10000' },
        'max-connections': { type: 'string', default: '10000' },
        'admin-port': { type: 'string' },
        'admin-host': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'socks-port': { type: 'string' },
        'socks-host': { type: 'string' },
        workers: { type: 'string', default: '1' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    usageError(`${(error as Error).message} (see --help)`);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const port = integer('port', values.port, 0, 65535);
  const gracePeriodMs = integer('grace-period', values['grace-period'], 0, 3_600_000);
  const maxConnections = integer('max-connections', values['max-connections'], 1, 10_000_000);
  const adminPort = values['admin-port'] === undefined ? undefined : integer('admin-port', values['admin-port'], 0, 65535);
  if (values['admin-host'] !== undefined && adminPort === undefined) usageError('--admin-host: expected --admin-port too, found it missing');
  const adminHost = values['admin-host'] ?? '127.0.0.1';
  const tls = await tlsFiles(values['tls-cert'], values['tls-key']);
  const socksPort = values['socks-port'] === undefined ? undefined : integer('socks-port', values['socks-port'], 0, 65535);
  if (values['socks-host'] !== undefined && socksPort === undefined) usageError('--socks-host: expected --socks-port too, found it missing');
  const socks = socksPort === undefined ? undefined : { host: values['socks-host'] ?? '127.0.0.1', port: socksPort };
  const workers = parseWorkers(values.workers) ?? usageError(`--workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found "${values.workers}"`);
  if (workers > 1 && cluster.isPrimary) {
    const { runPrimary } = await import('./cluster/primary.js');
    return runPrimary({ workers, gracePeriodMs, config: values.config, admin: adminPort === undefined ? undefined : { host: adminHost, port: adminPort } });
  }
  // A worker runs the proxy as a single process does, but leaves the admin listener to the primary.
  const inWorker = workers > 1 && cluster.isWorker;

  // The registry the metrics plugin records into, and the admin listener serves. prom-client is
  // loaded only with an admin listener (or by the metrics plugin itself): see PLUGIN_CATALOG.
  const services = container.createChildContainer();
  const registry = adminPort === undefined ? undefined : new (await import('prom-client')).Registry();
  if (registry) services.registerInstance(MetricsRegistry, registry);
  if (registry && inWorker) answerMetricsRequests(registry);
  if (inWorker) services.registerInstance(Logger, new WorkerLogger(new StreamLogger(), workerId()));
  // Plugins offer their admin routes (live fault control) through it, before the listener starts.
  const routes = adminPort === undefined || inWorker ? undefined : new AdminRouteTable();
  if (routes) services.registerInstance(AdminRoutes, routes);

  let server;
  try {
    server = await createProxyFromConfig(values.config, { host: values.host, port, gracePeriodMs, maxConnections, container: services, tls, socks });
  } catch (error) {
    if (error instanceof ProxyError && error.code === 'ERR_PROXY_CONFIG') usageError(error.message);
    throw error;
  }
  // SIGHUP and POST /reload re-read the config; a failed reload keeps the running chain.
  const reloader = new Reloader(server, values.config, inWorker ? services.resolve(Logger) : undefined);
  routes?.register('/reload', reloader.route);
  process.on('SIGHUP', () => void reloader.reload('SIGHUP'));
  let address;
  try {
    address = await server.listen();
  } catch (error) {
    usageError(`cannot listen on ${values.host}:${port}: ${(error as Error).message}`);
  }
  let admin: AdminServer | undefined;
  let adminAddress;
  if (registry && adminPort !== undefined && !inWorker) {
    const { createAdminServer } = await import('./admin.js');
    admin = createAdminServer(registry, { host: adminHost, port: adminPort, routes, health: () => reloader.health() });
    try {
      adminAddress = await admin.listen();
    } catch (error) {
      await server.close(0);
      usageError(`cannot listen on ${adminHost}:${adminPort} (admin): ${(error as Error).message}`);
    }
  }
  const lines = [`proxyline listening on ${url(address, tls ? 'https' : 'http')}`];
  for (const extra of server.addresses().slice(1)) {
    if (extra.scheme) lines.push(`proxyline ${extra.scheme} on ${url(extra).replace('http:', `${extra.scheme}:`)}`);
  }
  // A worker's ready lines are the primary's to print, once every worker listens.
  if (inWorker) reportReady(address, lines);
  else process.stdout.write(lines.map((line) => `${line}\n`).join(''));
  if (adminAddress) process.stdout.write(`proxyline admin on ${url(adminAddress)}\n`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    Promise.all([server.close(), admin?.close()]).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`proxyline: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
