/**
 * Lets a repeated warning through at most once per interval and counts what it held back, so a
 * condition that recurs thousands of times a second (EMFILE on every accept, a stalled log)
 * costs one line per interval, and that line says how many times it happened meanwhile.
 */
export class Throttle {
  private last = -Infinity;
  private suppressed = 0;

  constructor(
    /** Shortest time between two warnings, in ms. */
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Returns undefined while the interval has not passed (the occurrence is counted), else how many
   * occurrences were held back since the last warning (0 or more): warn now, and say so.
   */
  take(): number | undefined {
    const now = this.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return undefined;
    }
    this.last = now;
    const held = this.suppressed;
    this.suppressed = 0;
    return held;
  }
}
