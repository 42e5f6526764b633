// The subcommands of the `proxyline` CLI. Each module is imported only when its command runs, so
// that starting the proxy loads none of them.
import type { CommandEntry } from './command.js';

/** Every subcommand, in the order `proxyline --help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'har', summary: 'convert a capture file to HAR 1.2 (JSON)', load: async () => (await import('./har.js')).harCommand },
  { name: 'report', summary: 'write a capture file as one self-contained HTML report', load: async () => (await import('./report.js')).reportCommand },
  { name: 'validate', summary: 'check a plugins.json as start-up does, without listening', load: async () => (await import('./validate.js')).validateCommand },
  {
    name: 'print-pipeline',
    summary: 'print the resolved chain: stage order, effective options, hooks',
    load: async () => (await import('./print-pipeline.js')).printPipelineCommand,
  },
];
