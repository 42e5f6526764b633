// Printing: one table per metric with a column per proxy and the ratios to the baseline.

export interface Row {
  label: string;
  /** Value per proxy name; a missing entry prints as "-". */
  values: Record<string, number | undefined>;
  digits?: number;
  /** Whether the ratio columns (proxyline/baseline by default) mean something for this row. */
  ratio?: boolean;
}

export interface Target {
  name: string;
  /** What was measured, in words with numbers. */
  measured: string;
  pass: boolean;
}

const fmt = (value: number | undefined, digits = 0) =>
  value === undefined || Number.isNaN(value) ? '-' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/**
 * Renders a table: the row label, a column per proxy, then a ratio column per [numerator,
 * denominator] pair (by default `<name>/baseline` for each proxyline column).
 */
export function table(title: string, columns: string[], rows: Row[], ratios?: [string, string][]): string {
  const pairs = ratios ?? columns.filter((c) => c.startsWith('proxyline')).map((c): [string, string] => [c, 'baseline']);
  const header = ['', ...columns, ...pairs.map(([a, b]) => `${a}/${b}`)];
  const body = rows.map((row) => [
    row.label,
    ...columns.map((c) => fmt(row.values[c], row.digits)),
    ...pairs.map(([a, b]) => {
      const base = row.values[b];
      const value = row.values[a];
      return row.ratio && base && value !== undefined && !Number.isNaN(value) ? `${(value / base).toFixed(2)}x` : '';
    }),
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
  return ['\n## Targets', ...list.map((t) => `${t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.measured}`)].join('\n');
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
