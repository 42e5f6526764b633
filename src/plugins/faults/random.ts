// The seeded generator of the `faults` plugin. Each decision has a state of its own, derived from
// (seed, fault name, connection ordinal, request ordinal), never from Math.random or the clock:
// the same seed and the same requests replay the same faults, whatever the timing.

/** The murmur3 finalizer: spreads every input bit over the 32 output bits. */
export function mix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of `text` (FNV-1a over UTF-16 units, then mixed) starting from `seed`. */
export function hashText(seed: number, text: string): number {
  let h = mix32(seed ^ 0x811c9dc5);
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/** `state` with one more number folded in (an ordinal, a tag); no allocation. */
export function fold(state: number, value: number): number {
  return mix32(Math.imul(state ^ 0x9e3779b9, 0x01000193) + mix32(value + 0x7f4a7c15));
}

const STEP = 0x6d2b79f5;

/** mulberry32's output for a state already stepped: a number in [0, 1). */
function output(stepped: number): number {
  let t = Math.imul(stepped ^ (stepped >>> 15), stepped | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/**
 * The first number a {@link Random} made from `state` would give: whether a fault fires is known
 * without allocating a generator (most draws do not fire).
 */
export function firstDraw(state: number): number {
  return output((state + STEP) | 0);
}

/** mulberry32: a small, fast generator, good enough to decide faults; in [0, 1). */
export class Random {
  private state: number;

  constructor(state: number) {
    this.state = state | 0;
  }

  /** The next number, in [0, 1). */
  next(): number {
    this.state = (this.state + STEP) | 0;
    return output(this.state);
  }
}
