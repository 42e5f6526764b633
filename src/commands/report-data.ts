// What the report shows, computed from the capture records: rows of the waterfall, latencies per
// host, counts by status, error code and fault. Pure data: report-charts.ts and report-page.ts draw it.
import type { CaptureRecord } from '../plugins/capture-record.js';
import { hostOf } from './record-url.js';

/** A phase of a waterfall bar, in ms from the capture's start. */
export interface Span {
  /** Where it starts. */
  readonly from: number;
  /** Where it ends (≥ from). */
  readonly to: number;
}

/** One record as a row of the waterfall. */
export interface WaterfallRow {
  /** The record's kind. */
  readonly kind: CaptureRecord['kind'];
  /** Its connection and exchange ordinals. */
  readonly connection: number;
  readonly exchange: number;
  /** `GET http://…` (or what it was, for a failure). */
  readonly label: string;
  /** Status, or null when no response was sent. */
  readonly status: number | null;
  /** From the request head to the end. */
  readonly span: Span;
  /** Up to a fresh upstream being ready. */
  readonly connect?: Span;
  /** Up to a pooled upstream being handed over. */
  readonly blocked?: Span;
  /** Upstream ready to the first response byte (to the end when none came). */
  readonly wait?: Span;
  /** First response byte to the end. */
  readonly receive?: Span;
  /** The error code, when it failed. */
  readonly error?: string;
  /** The plugin that answered in the upstream's place. */
  readonly answeredBy?: string;
  /** Names of the faults that fired. */
  readonly faults: readonly string[];
  /** A one-line description for the row's tooltip. */
  readonly detail: string;
}

/** A client connection: its lifetime in the capture and its rows. */
export interface ConnectionLane {
  /** Its ordinal. */
  readonly connection: number;
  /** The client's address:port. */
  readonly client: string;
  /** From its first request to the end of its last. */
  readonly span: Span;
  /** Its records, in the order they started. */
  readonly rows: readonly WaterfallRow[];
}

/** Latency statistics of one upstream host. */
export interface HostStats {
  /** `host` or `host:port`. */
  readonly host: string;
  /** HTTP exchanges to it, and how many failed (an error code recorded). */
  readonly requests: number;
  readonly errors: number;
  /** Counts by status class: `2xx`, `3xx`, `4xx`, `5xx`, `none`. */
  readonly classes: Readonly<Record<StatusClass, number>>;
  /** Total times (ms, sorted) of its exchanges that got a response not given by a plugin in the upstream's place. */
  readonly latencies: readonly number[];
  /** Bytes towards the client and towards the upstream. */
  readonly bytesOut: number;
  readonly bytesIn: number;
}

/** A status class, or `none` when no response was sent. */
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'none';
/** The classes in the order the charts stack them. */
export const STATUS_CLASSES: readonly StatusClass[] = ['2xx', '3xx', '1xx', '4xx', '5xx', 'none'];

/** Counts per time bucket, for the charts over time. */
export interface TimeBucket {
  /** The bucket's start, ms from the capture's start. */
  readonly from: number;
  /** Responses by class, of the exchanges that started in it. */
  readonly classes: Record<StatusClass, number>;
  /** Bytes of the records that started in it. */
  bytesOut: number;
  bytesIn: number;
}

/** A mark on the time axis: a fault that fired or an error. */
export interface TimeMark {
  /** When (ms from the capture's start): the record's start. */
  readonly at: number;
  /** `fault` or `error`. */
  readonly kind: 'fault' | 'error';
  /** The fault's name or the error code. */
  readonly name: string;
}

/** Everything the report draws. */
export interface ReportModel {
  /** The capture file's name, as given. */
  readonly source: string;
  /** proxyline's version, for the footer. */
  readonly version: string;
  /** Epoch ms of the earliest start (the charts' 0), and the span to the latest end. */
  readonly start: number;
  readonly duration: number;
  /** Counts for the overview. */
  readonly totals: {
    records: number;
    http: number;
    tunnels: number;
    failures: number;
    connections: number;
    errors: number;
    faults: number;
    bytesOut: number;
    bytesIn: number;
  };
  /** The waterfall, by connection; rows beyond `maxRows` are left out (`hiddenRows` says how many). */
  readonly lanes: readonly ConnectionLane[];
  readonly hiddenRows: number;
  /** Per host, most requests first. */
  readonly hosts: readonly HostStats[];
  /** Time buckets (`bucketMs` wide) covering the capture. */
  readonly bucketMs: number;
  readonly buckets: readonly TimeBucket[];
  /** Faults and errors on the time axis. */
  readonly marks: readonly TimeMark[];
  /** Counts by status code, by error code (with an example message and who answered), by fault. */
  readonly statuses: readonly { status: number; reason: string; count: number }[];
  readonly errors: readonly { code: string; count: number; message: string; answeredBy: string }[];
  readonly faults: readonly { name: string; type: string; direction: string; count: number; hosts: string }[];
}

/** The status class of a status code. */
export function statusClass(status: number | null | undefined): StatusClass {
  if (status === null || status === undefined) return 'none';
  if (status < 200) return '1xx';
  if (status < 300) return '2xx';
  if (status < 400) return '3xx';
  return status < 500 ? '4xx' : '5xx';
}

/** The value at quantile `q` (0–1) of sorted values, by nearest rank; NaN for none. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const emptyClasses = (): Record<StatusClass, number> => ({ '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, none: 0 });
const span = (from: number, to: number): Span => ({ from, to: Math.max(from, to) });

/** One record as a waterfall row, its times shifted to the capture's start. */
function row(record: CaptureRecord, offset: number): WaterfallRow {
  const { connectMs, firstByteMs, endMs } = record.timings;
  const ready = connectMs ?? 0;
  const firstByte = firstByteMs ?? endMs;
  const label = record.request ? `${record.request.method} ${record.request.target}` : `(${record.kind}) ${record.error?.code ?? ''}`.trim();
  const status = record.response?.status ?? null;
  const parts = [
    `#${record.connection}.${record.exchange} ${label}`,
    status === null ? 'no response' : `${status} ${record.response!.reason}`,
    `total ${endMs} ms`,
    connectMs === null ? undefined : `${record.reused ? 'pooled' : 'connect'} ${connectMs} ms`,
    firstByteMs === null ? undefined : `first byte ${firstByteMs} ms`,
    record.error ? `${record.error.code}: ${record.error.message}` : undefined,
    record.answeredBy ? `answered by ${record.answeredBy}` : undefined,
    record.faults.length > 0 ? `faults: ${record.faults.map((fault) => `${fault.name} (${fault.type})`).join(', ')}` : undefined,
  ];
  const base: WaterfallRow = {
    kind: record.kind,
    connection: record.connection,
    exchange: record.exchange,
    label,
    status,
    span: span(offset, offset + endMs),
    faults: record.faults.map((fault) => fault.name),
    detail: parts.filter(Boolean).join(' · '),
    ...(record.error ? { error: record.error.code } : {}),
    ...(record.answeredBy ? { answeredBy: record.answeredBy } : {}),
  };
  if (record.kind !== 'http') return base;
  return {
    ...base,
    ...(connectMs !== null ? { [record.reused ? 'blocked' : 'connect']: span(offset, offset + connectMs) } : {}),
    wait: span(offset + ready, offset + firstByte),
    ...(firstByteMs !== null ? { receive: span(offset + firstByteMs, offset + endMs) } : {}),
  };
}

/** Builds the report's model; the waterfall keeps at most `maxRows` rows (the earliest connections first). */
export function buildReport(records: readonly CaptureRecord[], meta: { source: string; version: string; maxRows?: number }): ReportModel {
  const maxRows = meta.maxRows ?? 400;
  const startOf = (record: CaptureRecord) => Date.parse(record.startedAt);
  // Loops, not Math.min(...list): a spread of a large capture would overflow the stack.
  let start = Infinity;
  for (const record of records) start = Math.min(start, startOf(record));
  if (start === Infinity) start = 0;
  let duration = 0;
  for (const record of records) duration = Math.max(duration, startOf(record) - start + record.timings.endMs);

  // Lanes: one per connection, in the order they started, rows in the order they started.
  const byConnection = new Map<number, CaptureRecord[]>();
  for (const record of records) {
    let list = byConnection.get(record.connection);
    if (!list) byConnection.set(record.connection, (list = []));
    list.push(record);
  }
  const lanes: ConnectionLane[] = [];
  let shown = 0;
  const ordered = [...byConnection.values()].map((list) => list.sort((a, b) => startOf(a) - startOf(b) || a.exchange - b.exchange));
  ordered.sort((a, b) => startOf(a[0]!) - startOf(b[0]!) || a[0]!.connection - b[0]!.connection);
  for (const list of ordered) {
    if (shown >= maxRows) break;
    const rows = list.slice(0, maxRows - shown).map((record) => row(record, startOf(record) - start));
    shown += rows.length;
    const first = list[0]!;
    let end = 0;
    for (const record of list) end = Math.max(end, startOf(record) - start + record.timings.endMs);
    lanes.push({ connection: first.connection, client: `${first.client.address}:${first.client.port}`, span: span(rows[0]!.span.from, end), rows });
  }

  // Hosts, buckets, marks and the tables, over every record.
  const bucketMs = bucketWidthFor(duration);
  const buckets: TimeBucket[] = Array.from({ length: Math.max(1, Math.ceil(duration / bucketMs)) }, (_, i) => ({
    from: i * bucketMs,
    classes: emptyClasses(),
    bytesOut: 0,
    bytesIn: 0,
  }));
  const hosts = new Map<
    string,
    { requests: number; errors: number; classes: Record<StatusClass, number>; latencies: number[]; bytesOut: number; bytesIn: number }
  >();
  const marks: TimeMark[] = [];
  const statuses = new Map<number, { status: number; reason: string; count: number }>();
  const errors = new Map<string, { code: string; count: number; message: string; answeredBy: Set<string> }>();
  const faults = new Map<string, { name: string; type: string; direction: string; count: number; hosts: Set<string> }>();
  const totals = { records: records.length, http: 0, tunnels: 0, failures: 0, connections: byConnection.size, errors: 0, faults: 0, bytesOut: 0, bytesIn: 0 };
  // In start order, so that marks and ties in the tables come in the order things happened.
  const byStart = [...records].sort((a, b) => startOf(a) - startOf(b) || a.connection - b.connection || a.exchange - b.exchange);
  for (const record of byStart) {
    const at = startOf(record) - start;
    const bucket = buckets[Math.min(buckets.length - 1, Math.floor(at / bucketMs))]!;
    const host = hostOf(record);
    bucket.bytesOut += record.bytes.out;
    bucket.bytesIn += record.bytes.in;
    totals.bytesOut += record.bytes.out;
    totals.bytesIn += record.bytes.in;
    if (record.kind === 'tunnel') totals.tunnels++;
    else if (record.kind === 'failure' || !record.request) totals.failures++;
    else totals.http++;
    if (record.kind !== 'tunnel') bucket.classes[statusClass(record.response?.status)]++;
    if (record.response) {
      const key = record.response.status;
      const entry = statuses.get(key) ?? { status: key, reason: record.response.reason, count: 0 };
      entry.count++;
      statuses.set(key, entry);
    }
    if (record.kind === 'http' && record.request) {
      let stats = hosts.get(host);
      if (!stats) hosts.set(host, (stats = { requests: 0, errors: 0, classes: emptyClasses(), latencies: [], bytesOut: 0, bytesIn: 0 }));
      stats.requests++;
      stats.classes[statusClass(record.response?.status)]++;
      if (record.error) stats.errors++;
      // A plugin's answer in the upstream's place (a refusal) says nothing of the host's latency.
      if (record.response && !record.answeredBy) stats.latencies.push(record.timings.endMs);
      stats.bytesOut += record.bytes.out;
      stats.bytesIn += record.bytes.in;
    }
    if (record.error) {
      totals.errors++;
      marks.push({ at, kind: 'error', name: record.error.code });
      const entry = errors.get(record.error.code) ?? { code: record.error.code, count: 0, message: record.error.message, answeredBy: new Set<string>() };
      entry.count++;
      if (record.answeredBy) entry.answeredBy.add(record.answeredBy);
      errors.set(record.error.code, entry);
    }
    for (const fault of record.faults) {
      totals.faults++;
      marks.push({ at, kind: 'fault', name: fault.name });
      const entry = faults.get(fault.name) ?? { name: fault.name, type: fault.type, direction: fault.direction, count: 0, hosts: new Set<string>() };
      entry.count++;
      entry.hosts.add(host);
      faults.set(fault.name, entry);
    }
  }
  // Stable: equal counts keep the order in which they first happened.
  const byCount = <T extends { count: number }>(a: T, b: T) => b.count - a.count;
  return {
    source: meta.source,
    version: meta.version,
    start,
    duration,
    totals,
    lanes,
    hiddenRows: records.length - shown,
    hosts: [...hosts]
      .map(([host, stats]) => ({ host, ...stats, latencies: stats.latencies.sort((a, b) => a - b) }))
      .sort((a, b) => b.requests - a.requests || a.host.localeCompare(b.host)),
    bucketMs,
    buckets,
    marks,
    statuses: [...statuses.values()].sort((a, b) => a.status - b.status),
    errors: [...errors.values()].sort(byCount).map(({ answeredBy, ...rest }) => ({ ...rest, answeredBy: [...answeredBy].sort().join(', ') })),
    faults: [...faults.values()].sort(byCount).map(({ hosts: where, ...rest }) => ({ ...rest, hosts: [...where].sort().join(', ') })),
  };
}

/** Buckets for the charts over time: about 40 of them, at a round width. */
function bucketWidthFor(duration: number): number {
  const steps = [10, 20, 50, 100, 200, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000];
  return steps.find((step) => duration / step <= 48) ?? Math.ceil(duration / 48 / 3_600_000) * 3_600_000;
}
