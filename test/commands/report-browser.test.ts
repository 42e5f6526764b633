// The report opened in a real headless Chromium, as a person would open it: the page's own check
// (every mark of every chart laid out with a size) passes, the counts are those of the capture,
// and a screenshot comes out. Skipped, saying why, only when no Chromium is installed.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { parseCaptureLine } from '../../src/commands/capture-file.js';
import { buildReport } from '../../src/commands/report-data.js';
import { reportHtml } from '../../src/commands/report-page.js';
import { findChromium, pngSize, runChromium } from '../helpers/chromium.js';
import { ROOT } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';

const CHROMIUM = findChromium();
const browserTest = CHROMIUM ? test : test.skip;
if (!CHROMIUM) console.warn('report-browser.test: skipped, no Chromium on PATH (Debian: apt-get install chromium)');

/** The model and page of a fixture. */
function fixture(name: string) {
  const file = path.join(ROOT, 'test/fixtures/captures', name);
  const records = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => parseCaptureLine(line, `${name}:${i + 1}`));
  const model = buildReport(records, { source: name, version: 'test' });
  return { records, model, html: reportHtml(model) };
}

/** An attribute of the first element matching `tag[data-chart="…"]` or `body`, in dumped HTML. */
function attribute(dom: string, element: RegExp, name: string): string | undefined {
  const tag = element.exec(dom)?.[0];
  return tag === undefined ? undefined : new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
}

browserTest('report in Chromium: the page checks every chart drew every mark, and the counts are those of the capture', async (t) => {
  await withTempDir('proxyline-report-browser-', async (dir) => {
    for (const name of ['session.jsonl', 'busy.jsonl']) {
      const { model, html } = fixture(name);
      const page = path.join(dir, `${name}.html`);
      writeFileSync(page, html);
      const { code, stdout } = await runChromium(CHROMIUM!, path.join(dir, 'profile'), page, ['--virtual-time-budget=5000', '--dump-dom']);
      t.is(code, 0, name);
      t.is(attribute(stdout, /<body[^>]*>/, 'data-rendered'), 'ok', `${name}: the page's own check`);
      const drawn = (chart: string) => Number(attribute(stdout, new RegExp(`<svg[^>]*data-chart="${chart}"[^>]*>`), 'data-drawn'));
      const rows = model.lanes.reduce((sum, lane) => sum + lane.rows.length, 0);
      t.is(rows, model.totals.records, `${name}: every record has a row`);
      t.is(Number(attribute(stdout, /<svg[^>]*data-chart="waterfall"[^>]*>/, 'data-rows')), rows);
      // At least a lane per connection and a bar per record, plus error crosses and fault diamonds.
      const errors = model.lanes.flatMap((lane) => lane.rows).filter((row) => row.error).length;
      const faulted = model.lanes.flatMap((lane) => lane.rows).filter((row) => row.faults.length > 0).length;
      t.true(drawn('waterfall') >= model.lanes.length + rows + errors + faulted, `${name}: waterfall ${drawn('waterfall')}`);
      t.is(drawn('latency'), model.hosts.filter((host) => host.latencies.length > 0).length, `${name}: a line per host`);
      const bars = model.buckets.reduce((sum, bucket) => sum + Object.values(bucket.classes).filter((count) => count > 0).length, 0);
      t.is(drawn('status'), bars + model.marks.length, `${name}: a bar per bucket and class, a mark per fault and error`);
      const byteBars = model.buckets.reduce((sum, bucket) => sum + (bucket.bytesOut > 0 ? 1 : 0) + (bucket.bytesIn > 0 ? 1 : 0), 0);
      t.is(drawn('bytes'), byteBars, `${name}: a bar per bucket and direction`);
    }
  });
});

browserTest('report in Chromium: a page whose marks are not laid out says so (the check can fail)', async (t) => {
  await withTempDir('proxyline-report-browser-', async (dir) => {
    const { html } = fixture('session.jsonl');
    const page = path.join(dir, 'hidden.html');
    // A chart hidden by CSS lays nothing out: its marks have no size.
    writeFileSync(page, html.replace('</style>', 'svg[data-chart="latency"] { display: none; }</style>'));
    const { stdout } = await runChromium(CHROMIUM!, path.join(dir, 'profile'), page, ['--virtual-time-budget=5000', '--dump-dom']);
    t.is(attribute(stdout, /<body[^>]*>/, 'data-rendered'), 'failed');
    t.is(attribute(stdout, /<svg[^>]*data-chart="latency"[^>]*>/, 'data-drawn'), '0');
  });
});

browserTest('report in Chromium: a screenshot of the page comes out at the window size', async (t) => {
  await withTempDir('proxyline-report-browser-', async (dir) => {
    const page = path.join(dir, 'busy.html');
    writeFileSync(page, fixture('busy.jsonl').html);
    const png = path.join(dir, 'report.png');
    const { code } = await runChromium(CHROMIUM!, path.join(dir, 'profile'), page, ['--window-size=1280,2400', `--screenshot=${png}`]);
    t.is(code, 0);
    const bytes = readFileSync(png);
    t.deepEqual(pngSize(bytes), { width: 1280, height: 2400 });
    t.true(bytes.length > 50_000, `a page full of charts, not a blank one (${bytes.length} bytes)`);
  });
});
