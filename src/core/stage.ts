import { Observable, Subscriber, type MonoTypeOperatorFunction } from 'rxjs';
import type { ProxyEvent } from './events.js';

/**
 * Base class for a stateful pipeline stage: one object per connection, state in fields and work
 * in methods. Written with closures (`new Observable(s => source.subscribe({…}))`) the same stage
 * costs several hundred bytes more per connection, which thousands of idle tunnels multiply.
 * Override `onEvent` (and `onComplete`, `onFinalize` where needed).
 */
export abstract class Stage extends Subscriber<ProxyEvent> {
  /** Handles one event from upstream in the chain; a throw fails the connection. */
  protected abstract onEvent(event: ProxyEvent): void;

  /** Called when the source completes (a FIN); the default finishes at once. */
  protected onComplete(): void {
    this.finish();
  }

  /** Called once when the stage is torn down, whatever the reason (free timers, cancel work). */
  protected onFinalize(): void {}

  /** Sends an event on down the chain (nothing, once the stage is torn down). */
  protected emit(event: ProxyEvent): void {
    if (!this.closed) this.destination.next(event);
  }

  /** Completes downstream and tears the stage down (also after the source completed). */
  protected finish(): void {
    if (!this.closed) super._complete();
  }

  /** Errors downstream and tears the stage down (also after the source completed). */
  protected fail(error: unknown): void {
    if (!this.closed) super._error(error);
  }

  protected override _next(event: ProxyEvent): void {
    try {
      this.onEvent(event);
    } catch (error) {
      this.fail(error);
    }
  }

  protected override _complete(): void {
    try {
      this.onComplete();
    } catch (error) {
      this.fail(error);
    }
  }

  override unsubscribe(): void {
    if (this.closed) return;
    super.unsubscribe();
    this.onFinalize();
  }
}

/** Makes an operator from a stage: each subscription (each connection) gets a new one. */
export function stage(create: (downstream: Subscriber<ProxyEvent>) => Stage): MonoTypeOperatorFunction<ProxyEvent> {
  return (source) => new Observable<ProxyEvent>((downstream) => source.subscribe(create(downstream)));
}
