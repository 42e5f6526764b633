// How the log records (access-log's, capture's) write times: ISO instants and one-decimal durations.

/** The last second formatted, since most records of a busy proxy share it with the one before. */
let isoSecond = -1;
let isoPrefix = '';

/** `2026-11-26T15:40:02.123Z` from epoch milliseconds, as `Date#toISOString` gives it. */
export function isoTime(epochMs: number): string {
  const ms = Math.floor(epochMs);
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // up to and including the '.'
  }
  const millis = ms - second * 1000;
  return `${isoPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}

/** Milliseconds from `start` to `mark` (`performance.now()` values), with one decimal; null when the mark was never reached. */
export function msBetween(start: number, mark: number | undefined): number | null {
  return mark === undefined ? null : Math.round((mark - start) * 10) / 10;
}
