// `proxyline report`: the model drawn from the fixtures, and the HTML page it writes (in Node; the
// browser test is report-browser.test.ts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { parseCaptureLine } from '../../src/commands/capture-file.js';
import { buildReport, quantile, statusClass } from '../../src/commands/report-data.js';
import { reportHtml } from '../../src/commands/report-page.js';
import type { CaptureRecord } from '../../src/plugins/capture-record.js';
import { runCli } from '../helpers/cli.js';
import { ROOT } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';

const SESSION = path.join(ROOT, 'test/fixtures/captures/session.jsonl');

/** The records of a fixture, parsed as the commands parse them. */
function records(file: string): CaptureRecord[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => parseCaptureLine(line, `${file}:${i + 1}`));
}

test('report model: totals, lanes by connection in start order, and rows with their phases', (t) => {
  const model = buildReport(records(SESSION), { source: 'session.jsonl', version: 'test' });
  t.deepEqual(model.totals, {
    records: 16,
    http: 14,
    tunnels: 1,
    failures: 1,
    connections: 9,
    errors: 5,
    faults: 4,
    bytesOut: model.totals.bytesOut,
    bytesIn: model.totals.bytesIn,
  });
  t.is(model.start, Date.parse('2026-03-14T09:26:53.120Z'));
  t.is(model.duration, 1900 + 49, 'the last end: connection 9 starts at 1900 ms and takes 49 ms');
  t.deepEqual(
    model.lanes.map((lane) => [lane.connection, lane.rows.length]),
    [
      [1, 4],
      [2, 4],
      [3, 1],
      [4, 2],
      [5, 1],
      [6, 1],
      [7, 1],
      [8, 1],
      [9, 1],
    ],
  );
  t.is(model.hiddenRows, 0);
  const [first, second] = model.lanes[0]!.rows;
  t.deepEqual(
    [first!.connect, first!.wait, first!.receive, first!.blocked],
    [{ from: 0, to: 41.3 }, { from: 41.3, to: 88.6 }, { from: 88.6, to: 90.2 }, undefined],
  );
  t.deepEqual([second!.blocked, second!.connect, second!.faults], [{ from: 152, to: 152.4 }, undefined, ['slow-api']]);
  const tunnel = model.lanes[2]!.rows[0]!;
  t.deepEqual([tunnel.kind, tunnel.span, tunnel.wait], ['tunnel', { from: 60, to: 1900.5 }, undefined]);
  const aborted = model.lanes[5]!.rows[0]!;
  t.deepEqual([aborted.status, aborted.error, aborted.receive], [null, 'ERR_PROXY_ABORTED', undefined]);
  t.regex(
    aborted.detail,
    /no response · total 0\.5 ms · pooled 0\.3 ms · ERR_PROXY_ABORTED: fault "reset-sometimes" aborted the exchange · faults: reset-sometimes \(abort\)/,
  );
});

test('report model: per host latencies leave out refusals; status, error and fault tables count every record', (t) => {
  const model = buildReport(records(SESSION), { source: 'session.jsonl', version: 'test' });
  t.deepEqual(
    model.hosts.map((host) => [host.host, host.requests, host.errors, host.latencies.length]),
    [
      ['api.example.com', 7, 2, 6],
      ['static.example.com', 5, 1, 5],
      ['login.example.net', 2, 1, 1],
    ],
  );
  t.deepEqual(model.hosts[0]!.latencies, [19.5, 35.9, 49, 90.2, 233, 341.2]);
  t.deepEqual(model.hosts[0]!.classes, { '1xx': 0, '2xx': 4, '3xx': 1, '4xx': 0, '5xx': 1, none: 1 });
  t.deepEqual(
    model.statuses.map((s) => [s.status, s.count]),
    [
      [200, 9],
      [201, 1],
      [304, 1],
      [400, 1],
      [403, 1],
      [502, 1],
      [504, 1],
    ],
  );
  t.deepEqual(
    model.errors.find((e) => e.code === 'ERR_PROXY_FORBIDDEN'),
    {
      code: 'ERR_PROXY_FORBIDDEN',
      count: 1,
      message: 'destination login.example.net:80 is not allowed',
      answeredBy: 'destination-policy',
    },
  );
  t.deepEqual(
    model.faults.map((f) => [f.name, f.type, f.count, f.hosts]),
    [
      ['slow-api', 'latency', 1, 'api.example.com'],
      ['drip-feed', 'slice', 1, 'static.example.com'],
      ['stall', 'delay', 1, 'api.example.com'],
      ['reset-sometimes', 'abort', 1, 'api.example.com'],
    ],
  );
  t.is(model.bucketMs, 50);
  t.is(model.buckets.length, 39);
  const counted = model.buckets.reduce((sum, bucket) => sum + Object.values(bucket.classes).reduce((a, b) => a + b, 0), 0);
  t.is(counted, 15, 'every record but the tunnel, by its status class');
  t.is(
    model.buckets.reduce((sum, bucket) => sum + bucket.bytesOut, 0),
    model.totals.bytesOut,
  );
  t.deepEqual(
    model.marks.filter((mark) => mark.kind === 'fault').map((mark) => mark.name),
    ['slow-api', 'drip-feed', 'stall', 'reset-sometimes'],
  );
});

test('report model: the waterfall stops at maxRows and says how many it left out', (t) => {
  const model = buildReport(records(SESSION), { source: 's', version: 'test', maxRows: 6 });
  t.deepEqual(
    model.lanes.map((lane) => lane.rows.length),
    [4, 2],
  );
  t.is(model.hiddenRows, 10);
  t.regex(reportHtml(model), /10 more records are not drawn/);
});

test('quantile and statusClass', (t) => {
  t.is(quantile([1, 2, 3, 4], 0.5), 2);
  t.is(quantile([1, 2, 3, 4], 0.99), 4);
  t.true(Number.isNaN(quantile([], 0.5)));
  t.deepEqual([100, 204, 302, 404, 503, null].map(statusClass), ['1xx', '2xx', '3xx', '4xx', '5xx', 'none']);
});

test('report page: self-contained (no URL loaded), every chart present with its marks, captured text escaped', (t) => {
  const list = records(SESSION);
  list.push({ ...list[0]!, connection: 10, request: { ...list[0]!.request!, target: 'http://evil.example/<script>alert(1)</script>' } });
  const html = reportHtml(buildReport(list, { source: 'x<y>.jsonl', version: 'test' }));
  t.notRegex(html, /<(link|img|iframe)\b/i);
  t.notRegex(html, /\b(src|href)\s*=/i);
  t.notRegex(html, /url\(/i);
  t.notRegex(html, /@import/i);
  t.is(html.match(/<script>alert/g), null);
  t.true(html.includes('&#60;script&#62;alert(1)&#60;/script&#62;'));
  t.true(html.includes('x&#60;y&#62;.jsonl'));
  for (const chart of ['waterfall', 'latency', 'status', 'bytes']) {
    const svg = new RegExp(`<svg class="chart" data-chart="${chart}" data-marks="(\\d+)"`).exec(html);
    t.truthy(svg, chart);
    t.true(Number(svg![1]) > 0, chart);
  }
  t.notRegex(html, /NaN|undefined|Infinity/);
});

test('report page: an empty capture still makes a page, with zeros and no broken numbers', (t) => {
  const html = reportHtml(buildReport([], { source: 'empty.jsonl', version: 'test' }));
  t.regex(html, /<b>0<\/b><span>HTTP exchanges<\/span>/);
  t.notRegex(html, /NaN|undefined|Infinity/);
});

test('proxyline report writes the page to --out or stdout; --help and bad arguments', async (t) => {
  await withTempDir('proxyline-report-', async (dir) => {
    const out = path.join(dir, 'report.html');
    const written = await runCli(['report', SESSION, '--out', out]);
    t.is(written.code, 0);
    t.is(written.stderr, `proxyline: wrote a report of 16 records to ${out}\n`);
    const page = readFileSync(out, 'utf8');
    t.true(page.startsWith('<!doctype html>'));
    t.true(page.includes('session.jsonl'));
    const printed = await runCli(['report', SESSION]);
    t.is(printed.code, 0);
    t.is(printed.stdout, page);
    const help = await runCli(['report', '--help']);
    t.is(help.code, 0);
    t.true(help.stdout.startsWith('Usage: proxyline report CAPTURE.jsonl [--out report.html]'));
    const bad = await runCli(['report']);
    t.is(bad.code, 2);
    t.is(bad.stderr, 'proxyline: report: expected one capture file, found 0 (see proxyline report --help)\n');
  });
});
