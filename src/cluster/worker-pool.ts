import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../core/logger.js';
import type { BoundAddress } from '../core/transport.js';
import { DEFAULT_BACKOFF, RestartBackoff, type BackoffOptions } from './backoff.js';
import { isReady, type ReadyMessage } from './messages.js';

/** One of the N places a worker runs in; a worker that dies is replaced in the same slot. */
interface Slot {
  worker?: Worker;
  /** When its worker's proxy started to listen (performance.now()); absent until then. */
  readyAt?: number;
  /** Its worker's earlier restarts, for the next delay. */
  readonly backoff: RestartBackoff;
  /** The restart waiting out its delay. */
  restart?: NodeJS.Timeout;
}

/** Thrown by {@link WorkerPool.start} when a worker exits before every worker listens. */
export class WorkerStartError extends Error {
  constructor(
    message: string,
    /** 2 when the worker exited 2 (bad flags or configuration, port in use), else 1. */
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * The cluster primary's workers: forks them (each runs the CLI with the primary's own arguments),
 * restarts one that dies after a growing delay (see {@link RestartBackoff}), and on stop asks each
 * to drain (SIGTERM: its usual graceful shutdown) without restarting any.
 */
export class WorkerPool {
  private readonly slots: Slot[];
  private started = false;
  /** The address announced once every worker listened. */
  private address?: BoundAddress;
  private stopping = false;
  /** False once a worker exited non-zero during the stop, or had to be killed. */
  private clean = true;
  private onStarted?: { resolve: (ready: ReadyMessage) => void; reject: (error: WorkerStartError) => void };
  private onStopped?: () => void;

  constructor(
    /** How many workers to keep running. */
    readonly size: number,
    /** Where exits and restarts are recorded. */
    private readonly logger: Logger,
    backoff: BackoffOptions = DEFAULT_BACKOFF,
  ) {
    this.slots = Array.from({ length: size }, () => ({ backoff: new RestartBackoff(backoff) }));
  }

  /** Forks every worker; resolves with the last one's ready message (the address they share) once all listen. */
  start(): Promise<ReadyMessage> {
    cluster.on('message', (worker, message: unknown) => {
      if (isReady(message)) this.ready(worker, message);
    });
    cluster.on('exit', (worker, code, signal) => this.exited(worker, code, signal));
    return new Promise((resolve, reject) => {
      this.onStarted = { resolve, reject };
      for (const slot of this.slots) this.fork(slot);
    });
  }

  /** The workers whose proxy listens now. */
  up(): Worker[] {
    return this.slots.flatMap((slot) => (slot.worker && slot.readyAt !== undefined && slot.worker.isConnected() ? [slot.worker] : []));
  }

  /** Sends `signal` to every worker running (SIGHUP, relayed); returns how many. */
  signal(signal: NodeJS.Signals): number {
    const workers = this.slots.flatMap((slot) => (slot.worker ? [slot.worker] : []));
    for (const worker of workers) worker.process.kill(signal);
    return workers.length;
  }

  /**
   * Sends SIGTERM to every worker and resolves once all have exited: true when each exited 0.
   * Restarts waiting are dropped and none is started. One still running `killAfterMs` later (its
   * grace period, plus the time to write out logs) is killed.
   */
  stop(killAfterMs: number): Promise<boolean> {
    this.stopping = true;
    for (const slot of this.slots) clearTimeout(slot.restart);
    if (this.running() === 0) return Promise.resolve(this.clean);
    const guard = setTimeout(() => {
      this.clean = false;
      for (const slot of this.slots) {
        if (!slot.worker) continue;
        this.logger.error('worker still running after the grace period: killed', { worker: slot.worker.id, pid: slot.worker.process.pid });
        slot.worker.process.kill('SIGKILL');
      }
    }, killAfterMs);
    return new Promise((resolve) => {
      this.onStopped = () => {
        clearTimeout(guard);
        resolve(this.clean);
      };
      this.signal('SIGTERM');
    });
  }

  private running(): number {
    return this.slots.filter((slot) => slot.worker).length;
  }

  private fork(slot: Slot): void {
    slot.restart = undefined;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.readyAt = undefined;
    // A failed send or kill; the worker's exit, if it comes, is handled on 'exit'.
    worker.on('error', (error: Error) => this.logger.warn(`worker: ${error.message}`, { worker: worker.id, pid: worker.process.pid }));
  }

  private ready(worker: Worker, message: ReadyMessage): void {
    const { address } = message;
    const slot = this.slots.find((candidate) => candidate.worker === worker);
    if (!slot || slot.readyAt !== undefined) return;
    slot.readyAt = performance.now();
    if (this.started) {
      this.logger.info('worker restarted', { worker: worker.id, pid: worker.process.pid });
      // With --port 0 the workers share the port the first of them got while one of them holds it;
      // when every worker died at once, the next ones get another.
      if (address.port !== this.address?.port || address.host !== this.address.host) {
        this.logger.warn('workers listen on another port now', { worker: worker.id, host: address.host, port: address.port });
        this.address = address;
      }
      return;
    }
    if (this.slots.every((candidate) => candidate.readyAt !== undefined)) {
      this.started = true;
      this.address = address;
      this.onStarted?.resolve(message);
    }
  }

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    const slot = this.slots.find((candidate) => candidate.worker === worker);
    if (!slot) return;
    const upMs = slot.readyAt === undefined ? 0 : performance.now() - slot.readyAt;
    slot.worker = undefined;
    slot.readyAt = undefined;
    const fields = { worker: worker.id, pid: worker.process.pid, code, signal };
    if (this.stopping) {
      if (code !== 0 && code !== null) this.clean = false;
      if (this.running() === 0) this.onStopped?.();
      return;
    }
    if (!this.started) {
      // Its own message (a bad flag, a port in use) is on stderr already.
      this.onStarted?.reject(new WorkerStartError(`worker ${worker.id} exited before listening (code ${code}, signal ${signal})`, code === 2 ? 2 : 1));
      return;
    }
    const delayMs = slot.backoff.delay(upMs);
    this.logger.warn('worker exited: restarting', { ...fields, restartInMs: delayMs });
    slot.restart = setTimeout(() => this.fork(slot), delayMs);
  }
}
