// Printing: one table per metric with a column per proxy and the ratios to the baseline.

export interface Row {
  label: string;
  /** Value per proxy name; a missing entry prints as "-". */
  values: Record<string, number | undefined>;
  digits?: number;
  /** Whether the proxyline/baseline ratio means something for this row. */
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

/** Renders a table: the row label, a column per proxy, then `<name>/baseline` for each proxyline column. */
export function table(title: string, columns: string[], rows: Row[]): string {
  const ratioOf = columns.filter((c) => c.startsWith('proxyline'));
  const header = ['', ...columns, ...ratioOf.map((c) => `${c}/baseline`)];
  const body = rows.map((row) => [
    row.label,
    ...columns.map((c) => fmt(row.values[c], row.digits)),
    ...ratioOf.map((c) => {
      const base = row.values.baseline;
      const value = row.values[c];
      return row.ratio && base && value !== undefined ? `${(value / base).toFixed(2)}x` : '';
    }),
  ]);
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((line) => line[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  return [`\n## ${title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function targets(list: Target[]): string {
  return ['\n## Targets', ...list.map((t) => `${t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.measured}`)].join('\n');
}
