// Printing: one table per metric with a column per proxy, ratio rows under a row (its value over
// a reference column's, e.g. the splice's) and ratio columns for chosen pairs.

export interface Row {
  label: string;
  /** Value per proxy name; a missing entry prints as "-". */
  values: Record<string, number | undefined>;
  digits?: number;
  /** Whether the ratio columns mean something for this row. */
  ratio?: boolean;
  /** Reference columns: under this row, one row per reference with every column's value over the reference's. */
  over?: string[];
}

export interface Target {
  name: string;
  /** What was measured, in words with numbers. */
  measured: string;
  /** Undefined: printed as information, neither PASS nor FAIL. */
  pass?: boolean;
}

const fmt = (value: number | undefined, digits = 0) =>
  value === undefined || Number.isNaN(value) ? '-' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const ratio = (value: number | undefined, base: number | undefined) =>
  base && value !== undefined && !Number.isNaN(value) && !Number.isNaN(base) ? `${(value / base).toFixed(2)}x` : '';

/**
 * Renders a table: the row label, a column per proxy, then a ratio column per [numerator,
 * denominator] pair; a row with `over` gets a ratio row per reference column under it.
 */
export function table(title: string, columns: string[], rows: Row[], ratios: [string, string][] = []): string {
  const header = ['', ...columns, ...ratios.map(([a, b]) => `${a}/${b}`)];
  const body = rows.flatMap((row) => [
    [row.label, ...columns.map((c) => fmt(row.values[c], row.digits)), ...ratios.map(([a, b]) => (row.ratio ? ratio(row.values[a], row.values[b]) : ''))],
    ...(row.over ?? [])
      .filter((reference) => columns.includes(reference))
      .map((reference) => [
        `  ÷ ${reference}`,
        ...columns.map((c) => (c === reference ? '' : ratio(row.values[c], row.values[reference]))),
        ...ratios.map(() => ''),
      ]),
  ]);
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((line) => line[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [`\n## ${title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function targets(list: Target[]): string {
  const verdict = (t: Target) => (t.pass === undefined ? 'info' : t.pass ? 'PASS' : 'FAIL');
  return ['\n## Targets', ...list.map((t) => `${verdict(t)}  ${t.name}: ${t.measured}`)].join('\n');
}

/** The median of some rounds, with their range: what a run reports (a best round flatters). */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** Median, min and max of `values` (NaN for all three when empty). */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** `median (min–max)`, for the lines under a table. */
export function showSpread(s: Spread, digits = 0): string {
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}
