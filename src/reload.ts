// Reloading plugins.json in a running proxy: on SIGHUP and on the admin listener's POST /reload.
// A worker of a cluster handles the SIGHUP its primary relays exactly as a single process does.
import type { AdminHandler } from './core/admin-routes.js';
import { loadConfig } from './core/config.js';
import { ProxyError } from './core/errors.js';
import { StreamLogger, type Logger } from './core/logger.js';
import type { ProxyServer } from './core/server.js';
import { reloadProxy } from './proxy.js';

/** What one reload came to: the new chain's plugin names, or why the running chain stays. */
export type ReloadResult =
  | { readonly ok: true; readonly source: string; readonly plugins: readonly string[] }
  | {
      readonly ok: false;
      /** `invalid`: the file is not a valid plugins.json (the message start-up prints); `unavailable`: the proxy is shutting down. */
      readonly reason: 'invalid' | 'unavailable';
      readonly error: string;
    };

/**
 * Re-reads `file` and resolves it exactly as start-up does (same loader, catalog and services); if
 * it is valid, new connections use it and the old chain is disposed after its last connection.
 * Never rejects: a failure is a result, and the running chain stays.
 */
export async function reloadFromConfig(server: ProxyServer, file: string): Promise<ReloadResult> {
  try {
    const config = await loadConfig(file);
    const plugins = await reloadProxy(server, config.entries, config);
    return { ok: true, source: config.source, plugins: plugins.map((plugin) => plugin.name) };
  } catch (error) {
    const invalid = error instanceof ProxyError && error.code === 'ERR_PROXY_CONFIG';
    return { ok: false, reason: invalid ? 'invalid' : 'unavailable', error: (error as Error).message };
  }
}

/** When a reload happened and what it came to. */
interface ReloadRecord {
  readonly at: string;
  readonly result: ReloadResult;
}

/**
 * The CLI's reloads: one at a time, in the order asked (two quick SIGHUPs never apply an older
 * read of the file last), logged, counted, and reported on `/healthz`.
 */
export class Reloader {
  private queue: Promise<unknown> = Promise.resolve();
  private reloads = 0;
  private failures = 0;
  private last?: ReloadRecord;
  private lastFailure?: ReloadRecord;

  constructor(
    private readonly server: ProxyServer,
    /** The plugins.json start-up loaded. */
    private readonly file: string,
    private readonly logger: Logger = new StreamLogger(),
  ) {}

  /** Reloads once the reloads asked before are done; `trigger` (SIGHUP, POST /reload) is logged. */
  reload(trigger: string): Promise<ReloadResult> {
    const done = this.queue.then(() => this.run(trigger));
    this.queue = done;
    return done;
  }

  private async run(trigger: string): Promise<ReloadResult> {
    const result = await reloadFromConfig(this.server, this.file);
    const record = { at: new Date().toISOString(), result };
    this.reloads++;
    this.last = record;
    if (result.ok) {
      this.logger.info(`reload (${trigger}): ${result.source}: ${result.plugins.length} plugins, new connections use them`, { plugins: result.plugins });
    } else {
      this.failures++;
      this.lastFailure = record;
      this.logger.error(`reload (${trigger}) failed, the running chain stays: ${result.error}`);
    }
    return result;
  }

  /** Lines for `/healthz` after its `ok`: nothing before the first reload. */
  health(): string {
    const { last, lastFailure } = this;
    if (!last) return '';
    let text = `reloads: ${this.reloads} (${this.failures} failed)\nlast reload: ${last.at} ${last.result.ok ? 'ok' : 'failed'}\n`;
    if (lastFailure && !lastFailure.result.ok) text += `last reload error: ${lastFailure.at} ${lastFailure.result.error}\n`;
    return text;
  }

  /** `POST /reload` on the admin listener: 200 with the new chain, 422 with the error of an invalid file, 503 while shutting down. */
  readonly route: AdminHandler = async ({ method }) => {
    if (method !== 'POST') return { status: 405, headers: { Allow: 'POST' }, json: { error: `/reload: expected POST, found ${method}` } };
    const result = await this.reload('POST /reload');
    if (result.ok) return { status: 200, json: { reloaded: true, source: result.source, plugins: result.plugins, reloads: this.reloads } };
    return { status: result.reason === 'invalid' ? 422 : 503, json: { reloaded: false, error: result.error } };
  };
}
