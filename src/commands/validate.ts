// `proxyline validate [--config FILE]`: checks a plugins.json as start-up does, without listening.
import { writeOutput, type Command } from './command.js';
import { parseChainArgs, withResolvedChain } from './chain-file.js';

const HELP = `Usage: proxyline validate [--config FILE]

Checks a plugins.json exactly as start-up does: the file's shape, every plugin's options against
its schema, user modules loaded, every plugin constructed, order constraints. Nothing listens;
the plugins are disposed at once (an access-log or capture file is opened, and created when
missing, as at start-up). Prints "ok: N plugins", or the line start-up would print.

Options:
  --config <file>    plugins.json to check (default ./plugins.json)
  -h, --help         show this help

Exit codes: 0 when valid, 2 for bad arguments or an invalid configuration, 1 otherwise.
`;

/** `proxyline validate`. */
export const validateCommand: Command = {
  help: HELP,
  async run(args) {
    const options = parseChainArgs('validate', args, false);
    if (options.help) return writeOutput(HELP, undefined);
    const count = await withResolvedChain(options.config, (chain) => chain.length);
    await writeOutput(`ok: ${count} plugins\n`, undefined);
  },
};
