/** What a flow control pauses: a socket, or anything else that can wait (a reply held for the client). */
export interface FlowSource {
  /** Stop producing until `resume`. */
  pause(): unknown;
  /** Go on producing. */
  resume(): unknown;
}

const NONE: readonly string[] = [];

/**
 * Backpressure beside the stream: RxJS pushes, so whoever must wait (a full sink, a dial in
 * progress, a rate limiter) holds a named reason, and the source socket stays paused while any
 * reason is held. Holding is idempotent per reason, so a stage cannot leak a pause by re-holding.
 */
export class FlowControl {
  // Usually zero or one reason, changed rarely: a shared empty array and exact-size copies cost
  // less on every idle connection than a Set or an array grown by push.
  private reasons: readonly string[] = NONE;

  constructor(private source?: FlowSource) {}

  /**
   * Points the flow control at another source (the outbound side reads one upstream after the
   * other); the new source starts paused or flowing as the reasons held say.
   */
  retarget(source: FlowSource | undefined): void {
    this.source = source;
    if (this.reasons.length > 0) source?.pause();
    else source?.resume();
  }

  /** Pauses the source until `release(reason)`. */
  hold(reason: string): void {
    if (this.reasons.includes(reason)) return;
    this.reasons = [...this.reasons, reason];
    if (this.reasons.length === 1) this.source?.pause();
  }

  /** Drops one reason; the source resumes when none is left. */
  release(reason: string): void {
    if (!this.reasons.includes(reason)) return;
    this.reasons = this.reasons.length === 1 ? NONE : this.reasons.filter((held) => held !== reason);
    if (this.reasons.length === 0) this.source?.resume();
  }

  /** Whether any reason holds the source paused. */
  get paused(): boolean {
    return this.reasons.length > 0;
  }

  /** The reasons held now (for diagnostics and tests). */
  held(): string[] {
    return [...this.reasons];
  }
}
