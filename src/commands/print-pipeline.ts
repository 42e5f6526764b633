// `proxyline print-pipeline [--config FILE] [--json]`: the resolved chain as a person reads it.
import type { ProxyPlugin } from '../core/plugin.js';
import type { ResolvedPlugin } from '../core/registry.js';
import { writeOutput, type Command } from './command.js';
import { parseChainArgs, withResolvedChain } from './chain-file.js';

const HELP = `Usage: proxyline print-pipeline [--config FILE] [--json]

Resolves a plugins.json as start-up does (nothing listens) and prints the chain: the inbound
order (client → upstream, plugins.json order), the outbound order (upstream → client, reversed),
and for each plugin its effective options (the schema's defaults filled in) and whether it has
an inbound stage, an outbound stage and end hooks (onExchangeEnd, onClose). An invalid file
exits 2 with the line start-up would print.

Options:
  --config <file>    plugins.json to read (default ./plugins.json)
  --json             print it as JSON instead
  -h, --help         show this help

Exit codes: 0 when printed, 2 for bad arguments or an invalid configuration, 1 otherwise.
`;

/** One plugin of the printed chain. */
export interface PipelineEntry {
  /** Its place in plugins.json, from 0. */
  readonly index: number;
  readonly name: string;
  /** Effective options, keys sorted; null for an instance given in code. */
  readonly options: unknown;
  readonly inbound: boolean;
  readonly outbound: boolean;
  readonly onExchangeEnd: boolean;
  readonly onClose: boolean;
}

/** The chain as `--json` prints it. */
export interface Pipeline {
  /** The config file's absolute path. */
  readonly source: string;
  /** Names of the plugins with an inbound stage, in the order they see client → upstream events. */
  readonly inbound: readonly string[];
  /** Names of the plugins with an outbound stage, in the order they see upstream → client events. */
  readonly outbound: readonly string[];
  readonly plugins: readonly PipelineEntry[];
}

const has = (plugin: ProxyPlugin, hook: keyof ProxyPlugin): boolean => typeof plugin[hook] === 'function';

/** The chain described: which stages and hooks each plugin has (as the core finds them), and its options. */
export function describePipeline(chain: readonly ResolvedPlugin[], source: string): Pipeline {
  const plugins = chain.map(({ plugin, options }, index) => ({
    index,
    name: plugin.name,
    options: options === undefined ? null : sortKeys(options),
    inbound: has(plugin, 'inbound'),
    outbound: has(plugin, 'outbound'),
    onExchangeEnd: has(plugin, 'onExchangeEnd'),
    onClose: has(plugin, 'onClose'),
  }));
  return {
    source,
    inbound: plugins.filter((entry) => entry.inbound).map(({ name }) => name),
    outbound: plugins
      .filter((entry) => entry.outbound)
      .map(({ name }) => name)
      .reverse(),
    plugins,
  };
}

/** The chain as plain text: one order per line, then one block per plugin. */
export function pipelineText(pipeline: Pipeline): string {
  const order = (names: readonly string[]) => (names.length ? names.join(' → ') : '(none)');
  const lines = [
    `${pipeline.source}: ${pipeline.plugins.length} plugins`,
    '',
    `inbound  (client → upstream): ${order(pipeline.inbound)}`,
    `outbound (upstream → client): ${order(pipeline.outbound)}`,
    '',
  ];
  const width = Math.max(0, ...pipeline.plugins.map(({ name }) => name.length));
  for (const entry of pipeline.plugins) {
    const yes = (flag: boolean) => (flag ? 'yes' : 'no ');
    const hooks = [entry.onExchangeEnd && 'onExchangeEnd', entry.onClose && 'onClose'].filter(Boolean).join(', ') || 'none';
    lines.push(
      `${String(entry.index + 1).padStart(2)}. ${entry.name.padEnd(width)}  inbound ${yes(entry.inbound)}  outbound ${yes(entry.outbound)}  end hooks: ${hooks}`,
    );
    lines.push(...optionLines(entry.options));
  }
  return lines.join('\n') + '\n';
}

/** `    key: value` per option (values as JSON); a note when there are none. */
function optionLines(options: unknown): string[] {
  if (options === null) return ['    (an instance given in code: options unknown)'];
  const entries = Object.entries(options as Record<string, unknown>);
  if (entries.length === 0) return ['    (no options)'];
  return entries.map(([key, value]) => `    ${key}: ${JSON.stringify(value)}`);
}

/** A copy with object keys sorted at every level, so the output does not depend on the order they were written in. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
  );
}

/** `proxyline print-pipeline`. */
export const printPipelineCommand: Command = {
  help: HELP,
  async run(args) {
    const options = parseChainArgs('print-pipeline', args, true);
    if (options.help) return writeOutput(HELP, undefined);
    const pipeline = await withResolvedChain(options.config, describePipeline);
    await writeOutput(options.json ? `${JSON.stringify(pipeline, null, 2)}\n` : pipelineText(pipeline), undefined);
  },
};
