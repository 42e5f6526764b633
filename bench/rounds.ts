// Rounds across contenders: every round starts each contender in a fresh process, measures it,
// and stops it, taking turns (A, B, C, A, B, C, …). On this machine one process of a build can
// run up to twice as fast as another of the same build for its whole life, and load from
// elsewhere comes in bursts of seconds: fresh processes keep one slow process from deciding a
// figure, and taking turns meets every contender with the same bursts. The report takes the
// median of the rounds (a best round flatters) with their min–max.

/** One proxy (or none, for a run straight to the origin) under comparison. */
export interface Contender<P> {
  name: string;
  /** Starts a fresh process; a string says why this contender cannot run (not installed). */
  start: (() => Promise<P>) | string;
  /** Stops what `start` started. */
  stop: (proxy: P) => Promise<void>;
}

/** Every contender's samples, in round order, and the contenders that did not run, with why. */
export interface Rounds<T> {
  /** The contenders that ran, in the given order. */
  columns: string[];
  samples: Record<string, T[]>;
  skipped: Record<string, string>;
}

/**
 * Runs `rounds` rounds over `contenders`. A contender that fails to start or whose measurement
 * throws is skipped from then on (its earlier samples dropped), with the reason; the rest go on.
 */
export async function alternate<P, T>(
  contenders: Contender<P>[],
  rounds: number,
  measure: (name: string, proxy: P, round: number) => Promise<T>,
): Promise<Rounds<T>> {
  const samples: Record<string, T[]> = {};
  const skipped: Record<string, string> = {};
  for (let round = 0; round < Math.max(1, rounds); round++) {
    for (const { name, start, stop } of contenders) {
      if (skipped[name]) continue;
      if (typeof start === 'string') {
        skipped[name] = start;
        continue;
      }
      let proxy: P;
      try {
        proxy = await start();
      } catch (error) {
        skipped[name] = `failed to start: ${(error as Error).message.split('\n')[0]}`;
        continue;
      }
      try {
        (samples[name] ??= []).push(await measure(name, proxy, round));
      } catch (error) {
        skipped[name] = `run failed: ${(error as Error).message.split('\n')[0]}`;
      } finally {
        await stop(proxy);
      }
    }
  }
  for (const name of Object.keys(skipped)) delete samples[name];
  return { columns: contenders.map((c) => c.name).filter((name) => samples[name]), samples, skipped };
}
