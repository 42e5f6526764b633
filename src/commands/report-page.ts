// The report's one HTML file: styles, the charts (inline SVG), the tables, and a small script that
// checks the charts were laid out. Nothing is loaded from anywhere: it opens offline.
import { HOST_COLOURS, bytesChart, latencyChart, statusChart, waterfallChart } from './report-charts.js';
import { quantile, type ReportModel } from './report-data.js';
import { esc, formatBytes, formatMs } from './svg.js';

const STYLE = `
:root { color-scheme: light; --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --band: #f9fafb; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 6px; }
p.meta, p.note { color: var(--muted); margin: 0 0 8px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0 8px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 120px; background: var(--band); }
.card b { display: block; font-size: 20px; font-variant-numeric: tabular-nums; }
.card span { color: var(--muted); font-size: 12px; }
.card.bad b { color: #b91c1c; } .card.fault b { color: #be185d; }
.chart-box { border: 1px solid var(--line); border-radius: 8px; padding: 8px; overflow-x: auto; }
.waterfall-box { max-height: 640px; overflow-y: auto; }
svg.chart { display: block; width: 100%; height: auto; min-width: 760px; font-size: 11px; }
svg text { fill: var(--ink); font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
svg .tick, svg .guide-label, svg .legend-detail { fill: var(--muted); }
svg .axis-title { fill: var(--muted); font-family: inherit; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .guide { stroke: #9ca3af; stroke-dasharray: 4 4; }
svg .lane-band { fill: var(--band); }
svg .lane-label { font-weight: 600; }
svg .lane { fill: #9ca3af; }
svg .row-hover { fill: transparent; }
svg .row:hover .row-hover { fill: #eef2ff; }
svg .row.failed .row-label { fill: #b91c1c; }
svg .phase-blocked { fill: #cbd5e1; } svg .phase-connect { fill: #f59e0b; } svg .phase-wait { fill: #10b981; }
svg .phase-receive { fill: #3b82f6; } svg .phase-tunnel { fill: #a78bfa; } svg .phase-failure { fill: #dc2626; }
svg .error-outline { fill: none; stroke: #dc2626; stroke-width: 1.2; }
svg .error-mark { stroke: #dc2626; stroke-width: 2.2; fill: none; }
svg .error-tick { fill: #dc2626; }
svg .fault-mark { fill: #db2777; }
svg .cdf { fill: none; stroke-width: 2; }
svg .s2xx, svg .status-2xx { fill: #16a34a; } svg .s3xx, svg .status-3xx { fill: #0ea5e9; } svg .s1xx, svg .status-1xx { fill: #64748b; }
svg .s4xx, svg .status-4xx { fill: #f59e0b; } svg .s5xx, svg .status-5xx { fill: #dc2626; } svg .none, svg .status-none { fill: #374151; }
svg .bytes-out { fill: #3b82f6; } svg .bytes-in { fill: #94a3b8; }
.key { display: flex; flex-wrap: wrap; gap: 14px; margin: 0 0 8px; color: var(--muted); font-size: 13px; }
.key i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
table { border-collapse: collapse; margin: 6px 0 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 12px 4px 0; text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.n, th.n { text-align: right; }
.tables { display: flex; flex-wrap: wrap; gap: 12px 48px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
`;

/**
 * Runs once the page is laid out: counts, per chart, the marks the browser gave a size, and sets
 * data-drawn on each chart and data-rendered on the body (`ok` when every chart drew every mark),
 * for a person's devtools and for the test that opens the report in a headless browser.
 */
const CHECK_SCRIPT = `
(function () {
  var charts = document.querySelectorAll('svg[data-chart]');
  var drawn = {};
  var ok = charts.length > 0;
  for (var i = 0; i < charts.length; i++) {
    var svg = charts[i];
    var box = svg.getBoundingClientRect();
    var marks = svg.querySelectorAll('.mark');
    var count = 0;
    for (var j = 0; j < marks.length; j++) {
      var b = marks[j].getBBox();
      if (b.width > 0 || b.height > 0) count++;
    }
    svg.setAttribute('data-drawn', String(count));
    drawn[svg.getAttribute('data-chart')] = count;
    if (!(box.width > 0 && box.height > 0) || count !== Number(svg.getAttribute('data-marks'))) ok = false;
  }
  document.body.setAttribute('data-drawn', JSON.stringify(drawn));
  document.body.setAttribute('data-rendered', ok ? 'ok' : 'failed');
})();
`;

/** A table, or "none" when it has no rows; `numeric` columns are right-aligned. */
function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[], numeric: readonly number[] = []): string {
  if (rows.length === 0) return '<p class="note">none</p>';
  const cell = (tag: string, value: string | number, i: number) => `<${tag}${numeric.includes(i) ? ' class="n"' : ''}>${esc(value)}</${tag}>`;
  const head = `<tr>${headers.map((header, i) => cell('th', header, i)).join('')}</tr>`;
  return `<table>${head}${rows.map((row) => `<tr>${row.map((value, i) => cell('td', value, i)).join('')}</tr>`).join('')}</table>`;
}

/** A coloured key for a chart. */
const key = (items: readonly (readonly [colour: string, label: string])[]) =>
  `<div class="key">${items.map(([colour, label]) => `<span><i style="background:${colour}"></i>${esc(label)}</span>`).join('')}</div>`;

/** A number card of the overview. */
const card = (value: string | number, label: string, tone = '') =>
  `<div class="card${tone ? ` ${tone}` : ''}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;

const ms = (value: number) => (Number.isNaN(value) ? '—' : formatMs(value));

/** The whole report page. */
export function reportHtml(model: ReportModel): string {
  const { totals } = model;
  const from = new Date(model.start).toISOString();
  const to = new Date(model.start + model.duration).toISOString();
  const hostRows = model.hosts.map((host) => [
    host.host,
    host.requests,
    host.errors,
    host.classes['2xx'],
    host.classes['3xx'],
    host.classes['4xx'],
    host.classes['5xx'],
    host.classes.none,
    ms(quantile(host.latencies, 0.5)),
    ms(quantile(host.latencies, 0.9)),
    ms(quantile(host.latencies, 0.99)),
    ms(host.latencies.length > 0 ? host.latencies[host.latencies.length - 1]! : NaN),
    formatBytes(host.bytesOut),
  ]);
  const hidden =
    model.hiddenRows > 0 ? `<p class="note">${model.hiddenRows} more records are not drawn (the waterfall shows the earliest connections first).</p>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="proxyline ${esc(model.version)}">
<title>proxyline report · ${esc(model.source)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>proxyline capture report</h1>
<p class="meta">${esc(model.source)} · ${esc(from)} → ${esc(to)} (${esc(formatMs(model.duration))})</p>
<div class="cards">
${card(totals.http, 'HTTP exchanges')}${card(totals.connections, 'client connections')}${card(totals.tunnels, 'tunnels')}${card(totals.failures, 'connection failures', totals.failures > 0 ? 'bad' : '')}
${card(totals.errors, 'errors', totals.errors > 0 ? 'bad' : '')}${card(totals.faults, 'faults fired', totals.faults > 0 ? 'fault' : '')}${card(formatBytes(totals.bytesOut), 'to clients')}${card(formatBytes(totals.bytesIn), 'to upstreams')}
</div>

<h2 id="waterfall">Waterfall</h2>
<p class="note">Each client connection, then its requests in the order they started. Hover a row for its details.</p>
${key([
  ['#cbd5e1', 'waiting for a pooled upstream'],
  ['#f59e0b', 'connect'],
  ['#10b981', 'wait (to the first byte)'],
  ['#3b82f6', 'receive'],
  ['#a78bfa', 'tunnel'],
  ['#dc2626', 'error (outlined, ✕ at its end)'],
  ['#db2777', 'fault fired (◆)'],
])}
<div class="chart-box waterfall-box">${waterfallChart(model)}</div>
${hidden}

<h2 id="latency">Latency per host</h2>
<p class="note">Cumulative distribution of each host's total time per request: the share of its requests that finished within a given time. Requests without a response, and those a plugin answered in the upstream's place (refusals), are left out.</p>
<div class="chart-box">${latencyChart(model)}</div>
<div class="tables">${table(['host', 'requests', 'errors', '2xx', '3xx', '4xx', '5xx', 'no resp.', 'p50', 'p90', 'p99', 'max', 'to clients'], hostRows, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])}</div>

<h2 id="status">Responses over time</h2>
<p class="note">Requests by the ${esc(formatMs(model.bucketMs))} in which they started, stacked by status class; faults and errors marked below.</p>
<div class="chart-box">${statusChart(model)}</div>

<h2 id="bytes">Bytes over time</h2>
<p class="note">Bytes to clients and to upstreams, by the ${esc(formatMs(model.bucketMs))} in which their request started (tunnels count whole at their start).</p>
<div class="chart-box">${bytesChart(model)}</div>

<h2 id="summary">Summary</h2>
<div class="tables">
<div><h3>Status codes</h3>${table(
    ['status', 'reason', 'count'],
    model.statuses.map((s) => [s.status, s.reason, s.count]),
    [0, 2],
  )}</div>
<div><h3>Error codes</h3>${table(
    ['code', 'count', 'answered by', 'example'],
    model.errors.map((e) => [e.code, e.count, e.answeredBy || '—', e.message]),
    [1],
  )}</div>
<div><h3>Faults fired</h3>${table(
    ['fault', 'type', 'direction', 'count', 'hosts'],
    model.faults.map((f) => [f.name, f.type, f.direction, f.count, f.hosts]),
    [3],
  )}</div>
</div>
<footer>Written by proxyline ${esc(model.version)} from ${esc(model.source)}: ${totals.records} records. Host colours: ${model.hosts
    .slice(0, HOST_COLOURS.length)
    .map((host, i) => `<span style="color:${HOST_COLOURS[i]}">${esc(host.host)}</span>`)
    .join(', ')}.</footer>
<script>${CHECK_SCRIPT}</script>
</body>
</html>
`;
}
