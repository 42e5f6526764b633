// Small pieces for drawing the report's charts as SVG text: escaping, scales, ticks, labels.

/** Escapes text for an HTML or SVG text node or a quoted attribute. */
export function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A number for an SVG attribute: at most one decimal, never NaN. */
export function num(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value * 10) / 10) : '0';
}

/** Milliseconds as a person reads them: `0.4 ms`, `85 ms`, `1.25 s`, `2m05s`. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${Math.round(ms * 10) / 10} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 10) / 100} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

/** Bytes with a binary unit: `512 B`, `4.2 KiB`, `18.0 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Evenly spaced round values (1, 2 or 5 × a power of ten) covering [0, max], at most about `count` of them. */
export function niceTicks(max: number, count: number): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let i = 0; i * step <= max * 1.0001 && i <= count * 3; i++) ticks.push(i * step);
  return ticks;
}

/** Whole-number ticks for counts: like niceTicks, with steps of at least 1. */
export function countTicks(max: number, count: number): number[] {
  return niceTicks(Math.max(max, 1), count).filter((tick) => Number.isInteger(tick));
}

/** Ticks for byte counts at round values of the unit the largest one is shown in (0, 50 KiB, 100 KiB…). */
export function byteTicks(max: number, count: number): number[] {
  let unit = 1;
  while (max / unit >= 1024 && unit < 1024 ** 4) unit *= 1024;
  return niceTicks(max / unit, count).map((tick) => tick * unit);
}

/** Ticks for a log scale over [min, max]: 1, 2 and 5 × powers of ten, thinned to the decades when there are many. */
export function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let power = Math.floor(Math.log10(min)); 10 ** power <= max && ticks.length < 60; power++) {
    for (const m of [1, 2, 5]) {
      const value = m * 10 ** power;
      if (value >= min && value <= max) ticks.push(value);
    }
  }
  return ticks.length > 8 ? ticks.filter((value) => Math.abs(Math.log10(value) - Math.round(Math.log10(value))) < 1e-9) : ticks;
}

/** A linear map from [d0, d1] onto [r0, r1]. */
export function linear(d0: number, d1: number, r0: number, r1: number): (value: number) => number {
  const span = d1 - d0 || 1;
  return (value) => r0 + ((value - d0) / span) * (r1 - r0);
}
