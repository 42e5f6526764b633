import { Observable, Subscriber, type MonoTypeOperatorFunction } from 'rxjs';
import type { ConnectionContext } from './context.js';
import { toProxyError } from './errors.js';
import type { ProxyEvent, RequestHeadEvent } from './events.js';

/**
 * Base class for a stateful pipeline stage: one object per connection, state in fields and work
 * in methods. Written with closures (`new Observable(s => source.subscribe({…}))`) the same stage
 * costs several hundred bytes more per connection, which thousands of idle tunnels multiply.
 * Override `onEvent` (and `onComplete`, `onFinalize` where needed).
 */
export abstract class Stage extends Subscriber<ProxyEvent> {
  /**
   * The next stage when the next subscriber is one: events go to its `_next` directly, not
   * through `Subscriber.next`, one dynamic call per hop instead of two, for every event through
   * every plugin.
   */
  private readonly nextStage?: Stage;

  constructor(downstream: Subscriber<ProxyEvent>) {
    super(downstream);
    this.nextStage = downstream instanceof Stage ? downstream : undefined;
  }

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
    if (this.closed) return;
    const next = this.nextStage;
    if (!next) this.destination.next(event);
    else if (!next.isStopped) next._next(event); // what Subscriber.next would do
  }

  /** Completes downstream and tears the stage down (also after the source completed). */
  protected finish(): void {
    if (!this.closed) super._complete();
  }

  /** Errors downstream and tears the stage down (also after the source completed). */
  protected fail(error: unknown): void {
    if (!this.closed) super._error(error);
  }

  /** RxJS's entry point for each event: routes it to `onEvent` and turns a throw into `fail`; override `onEvent` instead. */
  protected override _next(event: ProxyEvent): void {
    try {
      this.onEvent(event);
    } catch (error) {
      this.fail(error);
    }
  }

  /** RxJS's entry point for completion: routes it to `onComplete` and turns a throw into `fail`. */
  protected override _complete(): void {
    try {
      this.onComplete();
    } catch (error) {
      this.fail(error);
    }
  }

  /** Tears the stage down once, then calls `onFinalize` so subclasses free what they hold. */
  override unsubscribe(): void {
    if (this.closed) return;
    super.unsubscribe();
    this.onFinalize();
  }
}

/** Makes a stage for one connection, given the subscriber its events go to. */
export type StageFactory = (downstream: Subscriber<ProxyEvent>) => Stage;

/** An operator made by `stage()`: it also carries its factory, so the pipeline can link such stages directly. */
export interface StageOperator extends MonoTypeOperatorFunction<ProxyEvent> {
  /** Creates the stage this operator would subscribe. */
  readonly createStage: StageFactory;
}

/** Makes an operator from a stage: each subscription (each connection) gets a new one. */
export function stage(create: StageFactory): StageOperator {
  const operator = (source: Observable<ProxyEvent>) => new Observable<ProxyEvent>((downstream) => source.subscribe(create(downstream)));
  return Object.assign(operator, { createStage: create });
}

/**
 * A stage that runs a check on each request head — sync or async (a password hash, a DNS
 * lookup, a token bucket that must wait) — before the request goes on. While an async check
 * runs, the client is held paused (reason `gate`) and the events that follow queue behind it
 * (bounded by that pause). A check that throws or rejects refuses that request: its exchange
 * gets the error and the client is answered in that request's place.
 */
export abstract class GateStage extends Stage {
  private queue?: ProxyEvent[];
  private sourceDone = false;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    /** The connection checked, whose client is held paused while a check runs. */
    protected readonly ctx: ConnectionContext,
  ) {
    super(downstream);
  }

  /** Checks one request; return nothing to pass at once, a promise to make it wait. */
  protected abstract check(event: RequestHeadEvent): void | Promise<void>;

  protected onEvent(event: ProxyEvent): void {
    if (this.queue) return void this.queue.push(event);
    if (event.kind !== 'request-head' || event.exchange.answeredLocally) return this.emit(event);
    let pending: void | Promise<void> = undefined;
    try {
      pending = this.check(event);
    } catch (error) {
      event.exchange.error = toProxyError(error);
    }
    if (!pending) return this.emit(event);
    this.queue = [event];
    this.ctx.inboundFlow.hold('gate');
    pending.then(
      () => this.settled(),
      (error: unknown) => {
        event.exchange.error = toProxyError(error);
        this.settled();
      },
    );
  }

  protected override onComplete(): void {
    if (this.queue) this.sourceDone = true;
    else this.finish();
  }

  private settled(): void {
    if (this.closed) return;
    const waiting = this.queue!;
    this.queue = undefined;
    // Released before the events go on (the client resumes a tick later, so none overtakes
    // them): a request refused on its way must not look still held to a drain deciding whether
    // it is the last. A next wait holds again.
    this.ctx.inboundFlow.release('gate');
    this.emit(waiting[0]!);
    // Later requests in the queue are checked in turn, and may make it wait again.
    for (let i = 1; i < waiting.length && !this.closed; i++) {
      if (this.queue) {
        (this.queue as ProxyEvent[]).push(...waiting.slice(i));
        return;
      }
      this.onEvent(waiting[i]!);
    }
    if (this.queue) return;
    if (this.sourceDone) this.finish();
  }
}
