// The report's charts, drawn as inline SVG text from the model. Every drawn datum carries the
// class `mark`, and each chart says how many it drew (data-marks), so the page can check that
// the browser laid them all out. Colours come from the page's CSS classes.
import { STATUS_CLASSES, quantile, type ReportModel, type Span, type StatusClass, type WaterfallRow } from './report-data.js';
import { byteTicks, countTicks, esc, formatBytes, formatMs, linear, logTicks, niceTicks, num } from './svg.js';

/** The width every chart is drawn at (viewBox units; the page scales it to the window). */
const WIDTH = 1100;
/** The colours of the hosts' lines, in the order of the hosts table. */
export const HOST_COLOURS = ['#2563eb', '#d97706', '#059669', '#7c3aed', '#db2777', '#0891b2', '#65a30d', '#9f1239'];

/** Collects SVG elements and counts the marks among them. */
class Drawing {
  readonly parts: string[] = [];
  marks = 0;

  /** Adds an element that is a drawn datum. */
  mark(element: string): void {
    this.parts.push(element);
    this.marks++;
  }

  /** Adds an element that is scaffolding (axes, labels, grid). */
  add(element: string): void {
    this.parts.push(element);
  }

  /** The finished `<svg>`. */
  svg(chart: string, height: number, title: string, extra = ''): string {
    return (
      `<svg class="chart" data-chart="${chart}" data-marks="${this.marks}"${extra} viewBox="0 0 ${WIDTH} ${num(height)}" width="${WIDTH}" height="${num(height)}" ` +
      `role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg">${this.parts.join('')}</svg>`
    );
  }
}

/** A time axis along the top or bottom with vertical grid lines across [top, bottom]. */
function timeAxis(d: Drawing, x: (ms: number) => number, end: number, top: number, bottom: number, labelY: number): void {
  for (const tick of niceTicks(end, 10)) {
    d.add(`<line class="grid" x1="${num(x(tick))}" x2="${num(x(tick))}" y1="${num(top)}" y2="${num(bottom)}"/>`);
    d.add(`<text class="tick" x="${num(x(tick))}" y="${num(labelY)}" text-anchor="middle">${esc(formatMs(tick))}</text>`);
  }
}

/** Cuts a label to `max` characters with an ellipsis. */
const cut = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

const LABEL_WIDTH = 380;
const LANE_HEIGHT = 20;
const ROW_HEIGHT = 16;
const AXIS_HEIGHT = 26;

/**
 * The waterfall: a lane per client connection (its lifetime, a thin grey bar) and a row per
 * request under it, its phases coloured (pooled wait, connect, wait, receive; a tunnel in one
 * colour), an error's bar outlined in red and crossed at its end, a fault marked before its start.
 */
export function waterfallChart(model: ReportModel): string {
  const rows = model.lanes.reduce((sum, lane) => sum + lane.rows.length, 0);
  const height = AXIS_HEIGHT + model.lanes.length * LANE_HEIGHT + rows * ROW_HEIGHT + 10;
  const d = new Drawing();
  const right = WIDTH - 16;
  const x = linear(0, Math.max(model.duration, 1), LABEL_WIDTH + 14, right);
  timeAxis(d, x, model.duration, AXIS_HEIGHT - 6, height - 4, 14);
  let y = AXIS_HEIGHT;
  for (const lane of model.lanes) {
    d.add(`<rect class="lane-band" x="0" y="${y}" width="${WIDTH}" height="${LANE_HEIGHT}"/>`);
    d.add(
      `<text class="lane-label" x="6" y="${y + 14}">${esc(`connection #${lane.connection} · ${lane.client} · ${lane.rows.length} record${lane.rows.length === 1 ? '' : 's'}`)}</text>`,
    );
    const width = Math.max(2, x(lane.span.to) - x(lane.span.from));
    d.mark(
      `<rect class="mark lane" x="${num(x(lane.span.from))}" y="${y + 8}" width="${num(width)}" height="4"><title>${esc(`connection #${lane.connection} (${lane.client}): ${formatMs(lane.span.to - lane.span.from)} from its first request to the end of its last`)}</title></rect>`,
    );
    y += LANE_HEIGHT;
    for (const row of lane.rows) {
      waterfallRow(d, row, x, y);
      y += ROW_HEIGHT;
    }
  }
  return d.svg('waterfall', height, 'Waterfall of connections and requests', ` data-rows="${rows}"`);
}

/** One request's row: label, status, phases, error and fault marks, all under one tooltip. */
function waterfallRow(d: Drawing, row: WaterfallRow, x: (ms: number) => number, y: number): void {
  const status = row.status === null ? '—' : String(row.status);
  const statusClass = row.status === null ? 'none' : `s${String(row.status)[0]}xx`;
  const parts: string[] = [`<g class="row${row.error ? ' failed' : ''}"><title>${esc(row.detail)}</title>`];
  parts.push(`<rect class="row-hover" x="0" y="${y}" width="${WIDTH}" height="${ROW_HEIGHT}"/>`);
  parts.push(`<text class="row-label" x="18" y="${y + 12}">${esc(cut(row.label, 50))}</text>`);
  parts.push(`<text class="row-status ${statusClass}" x="${LABEL_WIDTH}" y="${y + 12}" text-anchor="end">${esc(status)}</text>`);
  d.add(parts.join(''));
  const bar = (span: Span | undefined, phase: string, minimum = 0) => {
    if (!span) return;
    const width = x(span.to) - x(span.from);
    if (span.to - span.from <= 0 && minimum === 0) return;
    d.mark(
      `<rect class="mark phase-${phase}" x="${num(x(span.from))}" y="${y + 3}" width="${num(Math.max(width, minimum || 1))}" height="${ROW_HEIGHT - 6}"/>`,
    );
  };
  if (row.kind === 'http') {
    bar(row.blocked, 'blocked');
    bar(row.connect, 'connect');
    const phases = [row.blocked, row.connect, row.wait, row.receive].filter((s) => s && s.to > s.from).length;
    bar(row.wait, 'wait', phases === 0 ? 2 : 0);
    bar(row.receive, 'receive');
  } else bar(row.span, row.kind, 2);
  const end = x(row.span.to);
  if (row.error) {
    d.add(
      `<rect class="error-outline" x="${num(x(row.span.from) - 1)}" y="${y + 2}" width="${num(Math.max(end - x(row.span.from), 2) + 2)}" height="${ROW_HEIGHT - 4}"/>`,
    );
    d.mark(`<path class="mark error-mark" d="M${num(end + 3)} ${y + 4}l7 7m0 -7l-7 7"/>`);
  }
  if (row.faults.length > 0) {
    const cx = x(row.span.from) - 6;
    d.mark(`<path class="mark fault-mark" d="M${num(cx)} ${y + 3}l4 5l-4 5l-4 -5z"/>`);
  }
  d.add('</g>');
}

/**
 * Latency per host as a cumulative distribution: for each host, the share of its responses (y)
 * that took at most a given total time (x, logarithmic when the times span a wide range), with
 * guides at the median, p90 and p99.
 */
export function latencyChart(model: ReportModel): string {
  const height = 320;
  const [left, right, top, bottom] = [64, WIDTH - 290, 14, height - 40];
  const d = new Drawing();
  // Each host's latencies are sorted: the extremes are at their ends (no spread of a long list).
  let [min, max] = [Infinity, 1];
  for (const { latencies } of model.hosts) {
    if (latencies.length === 0) continue;
    min = Math.min(min, latencies[0]!);
    max = Math.max(max, latencies[latencies.length - 1]!);
  }
  min = Math.max(0.1, Math.min(min, max));
  const log = max / min >= 20;
  const x = log ? (ms: number) => linear(Math.log10(min), Math.log10(max), left, right)(Math.log10(Math.max(ms, min))) : linear(0, max, left, right);
  const y = linear(0, 1, bottom, top);
  for (const tick of log ? logTicks(min, max) : niceTicks(max, 8)) {
    d.add(`<line class="grid" x1="${num(x(tick))}" x2="${num(x(tick))}" y1="${top}" y2="${bottom}"/>`);
    d.add(`<text class="tick" x="${num(x(tick))}" y="${bottom + 16}" text-anchor="middle">${esc(formatMs(tick))}</text>`);
  }
  for (const share of [0, 0.25, 0.5, 0.75, 1]) {
    d.add(`<line class="grid" x1="${left}" x2="${right}" y1="${num(y(share))}" y2="${num(y(share))}"/>`);
    d.add(`<text class="tick" x="${left - 6}" y="${num(y(share) + 4)}" text-anchor="end">${share * 100}%</text>`);
  }
  for (const [share, name] of [
    [0.5, 'p50'],
    [0.9, 'p90'],
    [0.99, 'p99'],
  ] as const) {
    d.add(`<line class="guide" x1="${left}" x2="${right}" y1="${num(y(share))}" y2="${num(y(share))}"/>`);
    d.add(`<text class="guide-label" x="${right + 4}" y="${num(y(share) + 4)}">${name}</text>`);
  }
  d.add(`<text class="axis-title" x="${(left + right) / 2}" y="${height - 6}" text-anchor="middle">total time per request${log ? ' (log scale)' : ''}</text>`);
  d.add(
    `<text class="axis-title" x="14" y="${(top + bottom) / 2}" transform="rotate(-90 14 ${(top + bottom) / 2})" text-anchor="middle">share of requests</text>`,
  );
  model.hosts.forEach((host, i) => {
    const colour = HOST_COLOURS[i % HOST_COLOURS.length]!;
    const values = host.latencies;
    const legendY = top + 10 + i * 34;
    d.add(`<rect x="${right + 36}" y="${legendY - 8}" width="14" height="4" fill="${colour}"/>`);
    d.add(`<text class="legend" x="${right + 56}" y="${legendY - 2}">${esc(cut(host.host, 34))}</text>`);
    const summary =
      values.length === 0 ? 'no responses' : `n=${values.length} · p50 ${formatMs(quantile(values, 0.5))} · p99 ${formatMs(quantile(values, 0.99))}`;
    d.add(`<text class="legend-detail" x="${right + 56}" y="${legendY + 11}">${esc(summary)}</text>`);
    if (values.length === 0) return;
    let path = `M${num(x(values[0]!))} ${num(y(0))}`;
    values.forEach((value, k) => {
      path += `H${num(x(value))}V${num(y((k + 1) / values.length))}`;
    });
    d.mark(`<path class="mark cdf" stroke="${colour}" d="${path}"><title>${esc(`${host.host}: ${summary}`)}</title></path>`);
  });
  return d.svg('latency', height, 'Latency distribution per host');
}

/** Labels of the status classes in the legend. */
const CLASS_LABELS: Record<StatusClass, string> = { '1xx': '1xx', '2xx': '2xx', '3xx': '3xx', '4xx': '4xx', '5xx': '5xx', none: 'no response' };

/** A bucketed time axis shared by the charts over time. */
function bucketAxis(model: ReportModel, left: number, right: number) {
  const end = Math.max(model.buckets.length * model.bucketMs, 1);
  return { x: linear(0, end, left, right), end, slot: (right - left) / model.buckets.length };
}

/**
 * Responses over time: per bucket, the requests that started in it stacked by status class; below
 * the bars, a strip with a mark for every fault that fired and every error.
 */
export function statusChart(model: ReportModel): string {
  const height = 250;
  const [left, right, top, bottom] = [64, WIDTH - 120, 14, height - 66];
  const d = new Drawing();
  const { x, end, slot } = bucketAxis(model, left, right);
  const most = Math.max(1, ...model.buckets.map((bucket) => STATUS_CLASSES.reduce((sum, c) => sum + bucket.classes[c], 0)));
  const y = linear(0, most, bottom, top);
  for (const tick of countTicks(most, 5)) {
    d.add(`<line class="grid" x1="${left}" x2="${right}" y1="${num(y(tick))}" y2="${num(y(tick))}"/>`);
    d.add(`<text class="tick" x="${left - 6}" y="${num(y(tick) + 4)}" text-anchor="end">${tick}</text>`);
  }
  timeAxis(d, x, end, bottom, bottom + 4, height - 8);
  for (const bucket of model.buckets) {
    let base = 0;
    for (const c of STATUS_CLASSES) {
      const count = bucket.classes[c];
      if (count === 0) continue;
      const [y0, y1] = [y(base), y(base + count)];
      d.mark(
        `<rect class="mark status-${c}" x="${num(x(bucket.from) + 1)}" y="${num(y1)}" width="${num(Math.max(1, slot - 2))}" height="${num(y0 - y1)}"><title>${esc(`${formatMs(bucket.from)}–${formatMs(bucket.from + model.bucketMs)}: ${count} × ${CLASS_LABELS[c]}`)}</title></rect>`,
      );
      base += count;
    }
  }
  // The strip of faults and errors.
  const stripY = bottom + 24;
  d.add(`<text class="tick" x="${left - 6}" y="${stripY - 5}" text-anchor="end">faults</text>`);
  d.add(`<text class="tick" x="${left - 6}" y="${stripY + 11}" text-anchor="end">errors</text>`);
  for (const mark of model.marks) {
    const at = num(x(mark.at));
    if (mark.kind === 'fault')
      d.mark(
        `<path class="mark fault-mark" d="M${at} ${stripY - 13}l4 5l-4 5l-4 -5z"><title>${esc(`${formatMs(mark.at)}: fault ${mark.name}`)}</title></path>`,
      );
    else
      d.mark(
        `<rect class="mark error-tick" x="${num(x(mark.at) - 1)}" y="${stripY + 1}" width="2" height="12"><title>${esc(`${formatMs(mark.at)}: ${mark.name}`)}</title></rect>`,
      );
  }
  legend(
    d,
    right + 16,
    top + 4,
    STATUS_CLASSES.map((c) => [`status-${c}`, CLASS_LABELS[c]]),
  );
  return d.svg('status', height, 'Responses over time by status class');
}

/** Bytes over time: per bucket, bytes towards the client and towards the upstream, side by side. */
export function bytesChart(model: ReportModel): string {
  const height = 220;
  const [left, right, top, bottom] = [64, WIDTH - 120, 14, height - 36];
  const d = new Drawing();
  const { x, end, slot } = bucketAxis(model, left, right);
  const most = Math.max(1, ...model.buckets.map((bucket) => Math.max(bucket.bytesOut, bucket.bytesIn)));
  const y = linear(0, most, bottom, top);
  for (const tick of byteTicks(most, 5)) {
    d.add(`<line class="grid" x1="${left}" x2="${right}" y1="${num(y(tick))}" y2="${num(y(tick))}"/>`);
    d.add(`<text class="tick" x="${left - 6}" y="${num(y(tick) + 4)}" text-anchor="end">${esc(formatBytes(tick))}</text>`);
  }
  timeAxis(d, x, end, bottom, bottom + 4, height - 8);
  const half = Math.max(1, slot / 2 - 1);
  for (const bucket of model.buckets) {
    const range = `${formatMs(bucket.from)}–${formatMs(bucket.from + model.bucketMs)}`;
    if (bucket.bytesOut > 0)
      d.mark(
        `<rect class="mark bytes-out" x="${num(x(bucket.from) + 1)}" y="${num(y(bucket.bytesOut))}" width="${num(half)}" height="${num(bottom - y(bucket.bytesOut))}"><title>${esc(`${range}: ${formatBytes(bucket.bytesOut)} to clients`)}</title></rect>`,
      );
    if (bucket.bytesIn > 0)
      d.mark(
        `<rect class="mark bytes-in" x="${num(x(bucket.from) + 1 + half)}" y="${num(y(bucket.bytesIn))}" width="${num(half)}" height="${num(bottom - y(bucket.bytesIn))}"><title>${esc(`${range}: ${formatBytes(bucket.bytesIn)} to upstreams`)}</title></rect>`,
      );
  }
  legend(d, right + 16, top + 4, [
    ['bytes-out', 'to clients'],
    ['bytes-in', 'to upstreams'],
  ]);
  return d.svg('bytes', height, 'Bytes over time');
}

/** A column of coloured squares and their names. */
function legend(d: Drawing, x: number, y: number, items: readonly (readonly [cssClass: string, label: string])[]): void {
  items.forEach(([cssClass, label], i) => {
    d.add(`<rect class="${cssClass}" x="${x}" y="${y + i * 18}" width="11" height="11"/>`);
    d.add(`<text class="legend" x="${x + 16}" y="${y + i * 18 + 10}">${esc(label)}</text>`);
  });
}
