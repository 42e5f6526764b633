// The cluster primary of `--workers N`: it forks the workers, serves the admin listener, and
// turns signals into their shutdown (SIGINT, SIGTERM) or reload (SIGHUP, relayed). It does not run
// the proxy itself.
import cluster from 'node:cluster';
import type { AdminServer } from '../admin.js';
import type { AdminResponse, AdminRoutes } from '../core/admin-routes.js';
import { StreamLogger, type Logger } from '../core/logger.js';
import type { BoundAddress } from '../core/transport.js';
import type { BackoffOptions } from './backoff.js';
import { PrimaryReloader, type PrimaryReloadState } from './primary-reload.js';
import type { ReadyMessage } from './messages.js';
import { WorkerPool, WorkerStartError } from './worker-pool.js';

/** What the primary needs from the CLI's flags. */
export interface PrimaryOptions {
  /** Workers to fork (2 or more). */
  workers: number;
  /** The plugins.json the workers run: the primary checks it before passing a reload on. */
  config: string;
  /** The grace period each worker drains within on SIGINT/SIGTERM, in ms. */
  gracePeriodMs: number;
  /** The admin listener (`--admin-port`, `--admin-host`); absent: none. */
  admin?: { host: string; port: number };
  /** Where the primary records worker exits and restarts (default: stderr). */
  logger?: Logger;
  /** Restart delays (default 100 ms doubling to 10 s). */
  backoff?: BackoffOptions;
}

/** How long past the grace period a worker may take to write out its logs before it is killed. */
const DISPOSE_MARGIN_MS = 5000;

function url(address: BoundAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `http://${host}:${address.port}`;
}

/**
 * Plugin routes live in the workers, each with its own state (the faults plugin's live list), so
 * the primary serves none of them: a path other than /metrics, /healthz and /reload says so.
 */
function primaryRoutes(reloader: PrimaryReloader): AdminRoutes {
  return {
    register: () => {
      throw new Error('admin routes: the primary of --workers serves no plugin routes');
    },
    find: (path) =>
      path === '/reload'
        ? reloader.route
        : () => ({ status: 404, json: { error: 'not found: with --workers above 1 the plugins’ admin routes (such as /faults) are not served' } }),
  };
}

/** What `/healthz` answers: the workers up against those expected (503 with none up), and the reloads. */
function health(pool: WorkerPool, reloads: PrimaryReloadState): AdminResponse {
  const up = pool.up();
  const workers = { up: up.length, expected: pool.size, pids: up.map((worker) => worker.process.pid) };
  return { status: up.length > 0 ? 200 : 503, json: { workers, reloads } };
}

/**
 * Runs the primary: binds the admin listener (if any), forks the workers on the shared port
 * (round-robin: `cluster.SCHED_RR`), prints the ready lines once every worker listens, and
 * exits 0 once every worker drained after SIGINT/SIGTERM (1 if one failed or had to be killed;
 * a worker failing at start-up stops them all with its code: 2 for flags or configuration).
 */
export async function runPrimary(options: PrimaryOptions): Promise<void> {
  cluster.schedulingPolicy = cluster.SCHED_RR;
  const logger = options.logger ?? new StreamLogger();
  const pool = new WorkerPool(options.workers, logger, options.backoff);
  const reloader = new PrimaryReloader(options.config, () => pool.signal('SIGHUP'), logger);

  let admin: AdminServer | undefined;
  let adminAddress: BoundAddress | undefined;
  if (options.admin) {
    const [{ createAdminServer }, { ClusterRegistry }] = await Promise.all([import('../admin.js'), import('./cluster-registry.js')]);
    const registry = new ClusterRegistry(() => pool.up());
    admin = createAdminServer(registry, { ...options.admin, routes: primaryRoutes(reloader), health: () => health(pool, reloader.health()) });
    try {
      adminAddress = await admin.listen();
    } catch (error) {
      process.stderr.write(`proxyline: cannot listen on ${options.admin.host}:${options.admin.port} (admin): ${(error as Error).message}\n`);
      process.exit(2);
    }
  }

  let stopping = false;
  const stop = (code?: number) => {
    if (stopping) return;
    stopping = true;
    pool
      .stop(options.gracePeriodMs + DISPOSE_MARGIN_MS)
      .then(async (clean) => {
        await admin?.close();
        process.exit(code ?? (clean ? 0 : 1));
      })
      .catch(() => process.exit(1));
  };
  process.on('SIGINT', () => stop());
  process.on('SIGTERM', () => stop());
  // Each worker reloads as a single process does; the primary checks the file first and passes the
  // signal on only for a valid one (and must not die of it).
  process.on('SIGHUP', () => void reloader.reload('SIGHUP'));

  let ready: ReadyMessage;
  try {
    ready = await pool.start();
  } catch (error) {
    process.stderr.write(`proxyline: ${(error as Error).message}\n`);
    return stop(error instanceof WorkerStartError ? error.exitCode : 1);
  }
  if (stopping) return;
  process.stdout.write([...ready.lines, `proxyline workers: ${options.workers}`].map((line) => `${line}\n`).join(''));
  if (adminAddress) process.stdout.write(`proxyline admin on ${url(adminAddress)}\n`);
}
