// What every `proxyline <command>` has in common: its shape, its usage errors, its output.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

/** A subcommand of the `proxyline` CLI (`proxyline har …`). */
export interface Command {
  /** The whole text of `proxyline <name> --help`. */
  readonly help: string;
  /** Runs it with the arguments after its name; throws CommandError for a usage or input mistake. */
  run(args: string[]): Promise<void>;
}

/** A command as `proxyline --help` lists it; its module is loaded only when it runs. */
export interface CommandEntry {
  /** The word after `proxyline` that selects it. */
  readonly name: string;
  /** One line for `proxyline --help`. */
  readonly summary: string;
  /** Loads its module. */
  load(): Promise<Command>;
}

/** A mistake in a command's arguments or input file: the CLI prints its message and exits 2. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/** The arguments every capture-reading command takes: one input file, `--out`, `--help`. */
export interface FileArgs {
  /** The capture file (`-` for stdin). */
  readonly input: string;
  /** Where the output goes; undefined for stdout. */
  readonly out?: string;
  /** `--help` was given: print the help and nothing else. */
  readonly help: boolean;
}

/** Parses `FILE [--out FILE] [--help]`; throws CommandError for anything else. */
export function parseFileArgs(command: string, args: string[]): FileArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { out: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h', default: false } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new CommandError(`${command}: ${(error as Error).message} (see proxyline ${command} --help)`);
  }
  const { values, positionals } = parsed;
  if (values.help) return { input: '', help: true };
  if (positionals.length !== 1) {
    throw new CommandError(`${command}: expected one capture file, found ${positionals.length} (see proxyline ${command} --help)`);
  }
  if (values.out === '') throw new CommandError(`${command}: --out: expected a file name, found ""`);
  return { input: positionals[0]!, out: values.out, help: false };
}

/** proxyline's version, from its package.json (`unknown` if that cannot be read). */
export async function proxylineVersion(): Promise<string> {
  try {
    // dist/src/commands/ → the package root, in the repository and in an installed package alike.
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Writes `text` to `out`, or to stdout when there is none, and resolves once it is handed over. */
export async function writeOutput(text: string, out: string | undefined): Promise<void> {
  if (out !== undefined) {
    try {
      await writeFile(out, text);
    } catch (error) {
      throw new CommandError(`cannot write ${out}: ${(error as Error).message}`);
    }
    return;
  }
  await new Promise<void>((resolve, reject) => process.stdout.write(text, (error) => (error ? reject(error) : resolve())));
}
