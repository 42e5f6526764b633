import type { Readable } from 'node:stream';

/**
 * Backpressure beside the stream: RxJS pushes, so whoever must wait (a full sink, a dial in
 * progress, a rate limiter) holds a named reason, and the source socket stays paused while any
 * reason is held. Holding is idempotent per reason, so a stage cannot leak a pause by re-holding.
 */
export class FlowControl {
  private readonly reasons = new Set<string>();

  constructor(private readonly source: Pick<Readable, 'pause' | 'resume'>) {}

  /** Pauses the source until `release(reason)`. */
  hold(reason: string): void {
    this.reasons.add(reason);
    if (this.reasons.size === 1) this.source.pause();
  }

  /** Drops one reason; the source resumes when none is left. */
  release(reason: string): void {
    if (this.reasons.delete(reason) && this.reasons.size === 0) this.source.resume();
  }

  /** Whether any reason holds the source paused. */
  get paused(): boolean {
    return this.reasons.size > 0;
  }

  /** The reasons held now (for diagnostics and tests). */
  held(): string[] {
    return [...this.reasons];
  }
}
