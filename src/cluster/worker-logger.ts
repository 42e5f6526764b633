import type { LogFields, Logger } from '../core/logger.js';

/**
 * A {@link Logger} that adds `worker: <id>` to every record, so that the lines of workers sharing
 * one stderr can be told apart. The id is the cluster's (`cluster.worker.id`): a restarted
 * worker gets a new one.
 */
export class WorkerLogger implements Logger {
  constructor(
    private readonly inner: Logger,
    /** The cluster's id of this worker. */
    private readonly worker: number,
  ) {}
  info(message: string, fields?: LogFields): void {
    this.inner.info(message, { worker: this.worker, ...fields });
  }
  warn(message: string, fields?: LogFields): void {
    this.inner.warn(message, { worker: this.worker, ...fields });
  }
  error(message: string, fields?: LogFields): void {
    this.inner.error(message, { worker: this.worker, ...fields });
  }
}
