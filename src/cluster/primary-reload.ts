// Reloading under --workers: the primary checks plugins.json exactly as start-up would (resolved,
// then disposed), and only a valid file is passed on to the workers as SIGHUP, each of which
// reloads as a single process does. So /healthz and POST /reload on the primary can say what
// happened, and an invalid file never reaches a worker.
import { container } from 'tsyringe';
import type { AdminHandler } from '../core/admin-routes.js';
import { loadConfig } from '../core/config.js';
import { ProxyError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { proxyServices, resolveProxyChain } from '../proxy.js';

/** What the primary's last reload came to, for `/healthz`. */
export interface PrimaryReloadState {
  /** Reloads asked (SIGHUP, POST /reload), and how many of them found the file invalid. */
  readonly reloads: number;
  readonly failed: number;
  /** ISO time and outcome of the last one; absent before the first. */
  readonly last?: { readonly at: string; readonly ok: boolean };
  /** ISO time and message of the last invalid file; absent when none was. */
  readonly lastError?: { readonly at: string; readonly error: string };
}

/** Resolves `file` as start-up does and disposes the chain; the start-up message of an invalid file, or undefined. */
async function check(file: string): Promise<string | undefined> {
  try {
    const config = await loadConfig(file);
    const chain = await resolveProxyChain(config.entries, proxyServices(container.createChildContainer()), config);
    await Promise.allSettled(chain.map(async ({ plugin }) => plugin.dispose?.()));
    return undefined;
  } catch (error) {
    if (error instanceof ProxyError && error.code === 'ERR_PROXY_CONFIG') return error.message;
    return (error as Error).message;
  }
}

/** The primary's reloads: one at a time, each checked first, then SIGHUP to every worker. */
export class PrimaryReloader {
  private queue: Promise<unknown> = Promise.resolve();
  private state: PrimaryReloadState = { reloads: 0, failed: 0 };

  constructor(
    /** The plugins.json the workers were started with. */
    private readonly file: string,
    /** Sends SIGHUP to every worker; returns how many. */
    private readonly relay: () => number,
    private readonly logger: Logger,
  ) {}

  /** Checks the file, then relays SIGHUP if it is valid; resolves with the error of an invalid one. */
  reload(trigger: string): Promise<string | undefined> {
    const done = this.queue.then(() => this.run(trigger));
    this.queue = done;
    return done;
  }

  /** The reload lines of `/healthz`. */
  health(): PrimaryReloadState {
    return this.state;
  }

  /** `POST /reload` on the primary's admin listener: 200 once passed on, 422 with the error of an invalid file. */
  readonly route: AdminHandler = async ({ method }) => {
    if (method !== 'POST') return { status: 405, headers: { Allow: 'POST' }, json: { error: `/reload: expected POST, found ${method}` } };
    const error = await this.reload('POST /reload');
    if (error === undefined) return { status: 200, json: { reloaded: true, source: this.file, reloads: this.state.reloads } };
    return { status: 422, json: { reloaded: false, error } };
  };

  private async run(trigger: string): Promise<string | undefined> {
    const error = await check(this.file);
    const at = new Date().toISOString();
    const { reloads, failed, lastError } = this.state;
    if (error === undefined) {
      const workers = this.relay();
      this.state = { reloads: reloads + 1, failed, last: { at, ok: true }, lastError };
      this.logger.info(`reload (${trigger}): ${this.file} is valid; SIGHUP passed on to the workers`, { workers });
    } else {
      this.state = { reloads: reloads + 1, failed: failed + 1, last: { at, ok: false }, lastError: { at, error } };
      this.logger.error(`reload (${trigger}) failed, the running chain stays: ${error}`);
    }
    return error;
  }
}
