// What `validate` and `print-pipeline` share: their arguments, and a plugins.json resolved exactly
// as start-up resolves it, then disposed.
import { parseArgs } from 'node:util';
import { container } from 'tsyringe';
import { loadConfig } from '../core/config.js';
import { ProxyError } from '../core/errors.js';
import type { ResolvedPlugin } from '../core/registry.js';
import { proxyServices, resolveProxyChain } from '../proxy.js';
import { CommandError } from './command.js';

/** The arguments of a chain-reading command: `[--config FILE] [--json] [--help]`. */
export interface ChainArgs {
  /** The plugins.json to read (default ./plugins.json, as the proxy's). */
  readonly config: string;
  /** `--json` was given (only where the command takes it). */
  readonly json: boolean;
  /** `--help` was given: print the help and nothing else. */
  readonly help: boolean;
}

/** Parses `[--config FILE] [--json] [--help]` (`--json` only when `json` is true); throws CommandError for anything else. */
export function parseChainArgs(command: string, args: string[], json: boolean): ChainArgs {
  try {
    const { values } = parseArgs({
      args,
      options: {
        config: { type: 'string', default: './plugins.json' },
        help: { type: 'boolean', short: 'h', default: false },
        ...(json ? { json: { type: 'boolean', default: false } } : {}),
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.config === '') throw new Error('--config: expected a file name, found ""');
    return { config: values.config, json: values.json === true, help: values.help };
  } catch (error) {
    throw new CommandError(`${command}: ${(error as Error).message} (see proxyline ${command} --help)`);
  }
}

/**
 * Loads and resolves `file` as start-up does (the same loader, catalog, services and errors; an
 * invalid file is a CommandError carrying the message start-up prints), hands the chain to
 * `use`, then disposes it whatever happens. Listens on nothing; what resolving does (an
 * access-log or capture file opened, and created when missing) start-up does too.
 */
export async function withResolvedChain<T>(file: string, use: (chain: readonly ResolvedPlugin[], source: string) => T | Promise<T>): Promise<T> {
  let chain: ResolvedPlugin[];
  let source: string;
  try {
    const config = await loadConfig(file);
    source = config.source;
    chain = await resolveProxyChain(config.entries, proxyServices(container.createChildContainer()), config);
  } catch (error) {
    if (error instanceof ProxyError && error.code === 'ERR_PROXY_CONFIG') throw new CommandError(error.message);
    throw error;
  }
  try {
    return await use(chain, source);
  } finally {
    await Promise.allSettled(chain.map(async ({ plugin }) => plugin.dispose?.()));
  }
}
