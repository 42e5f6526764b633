// `proxyline report CAPTURE.jsonl [--out report.html]`: a capture file as one self-contained HTML page.
import path from 'node:path';
import { readCaptureFile } from './capture-file.js';
import { parseFileArgs, proxylineVersion, writeOutput, type Command } from './command.js';
import { buildReport } from './report-data.js';
import { reportHtml } from './report-page.js';

const HELP = `Usage: proxyline report CAPTURE.jsonl [--out report.html]

Writes a capture file (JSON lines written by the capture plugin; - reads stdin) as one HTML file
that opens offline in any browser: a waterfall of connections and requests, latency per host,
responses by status class and bytes over time, and tables of hosts, status codes, error codes
and faults.

Options:
  -o, --out <file>   write the report there (default: stdout)
  -h, --help         show this help

Exit codes: 0 when written, 2 for bad arguments or an unreadable or invalid capture file, 1 otherwise.
`;

/** `proxyline report`. */
export const reportCommand: Command = {
  help: HELP,
  async run(args) {
    const options = parseFileArgs('report', args);
    if (options.help) return writeOutput(HELP, undefined);
    const capture = await readCaptureFile(options.input);
    if (capture.warning) process.stderr.write(`proxyline: ${capture.warning}\n`);
    const source = options.input === '-' ? 'stdin' : path.basename(options.input);
    const model = buildReport(capture.records, { source, version: await proxylineVersion() });
    await writeOutput(reportHtml(model), options.out);
    if (options.out !== undefined) process.stderr.write(`proxyline: wrote a report of ${capture.records.length} records to ${options.out}\n`);
  },
};
