// `proxyline har CAPTURE.jsonl [--out FILE]`: a capture file as HAR 1.2.
import { readCaptureFile } from './capture-file.js';
import { parseFileArgs, proxylineVersion, writeOutput, type Command } from './command.js';
import { toHar } from './har-log.js';

const HELP = `Usage: proxyline har CAPTURE.jsonl [--out FILE]

Converts a capture file (JSON lines written by the capture plugin; - reads stdin) to HAR 1.2:
one entry per HTTP exchange, in the order they started, with proxyline's own fields _connection,
_exchange, _faults, _error, _answeredBy and _reused. Tunnels and connection failures are not HTTP
exchanges: they are listed in log._skipped instead.

Options:
  -o, --out <file>   write the HAR there (default: stdout)
  -h, --help         show this help

Exit codes: 0 when written, 2 for bad arguments or an unreadable or invalid capture file, 1 otherwise.
`;

/** `proxyline har`. */
export const harCommand: Command = {
  help: HELP,
  async run(args) {
    const options = parseFileArgs('har', args);
    if (options.help) return writeOutput(HELP, undefined);
    const capture = await readCaptureFile(options.input);
    if (capture.warning) process.stderr.write(`proxyline: ${capture.warning}\n`);
    const har = toHar(capture.records, { name: 'proxyline', version: await proxylineVersion() });
    await writeOutput(`${JSON.stringify(har, null, 2)}\n`, options.out);
    if (options.out !== undefined) process.stderr.write(`proxyline: wrote ${har.log.entries.length} entries to ${options.out}\n`);
  },
};
