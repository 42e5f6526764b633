import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Registry } from 'prom-client';
import { isMetricsAnswer, type MetricsRequest, type WorkerMetrics } from './messages.js';

/** One scrape waiting for its workers. */
interface Scrape {
  /** The ids of the workers that have not answered yet. */
  readonly waiting: Set<number>;
  readonly answers: WorkerMetrics[];
  readonly resolve: (answers: WorkerMetrics[]) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * The registry the primary's admin listener serves: each scrape asks every worker that is up for
 * its registry (over the cluster IPC channel) and serves the sum, metric by metric and label set
 * by label set (prom-client's `AggregatorRegistry.aggregate`). Rather than prom-client's own
 * `clusterMetrics()`, which asks every connected worker and fails the whole scrape when one does
 * not answer in 5 s, it asks only the workers that listen (a worker still starting has no
 * listener for the request yet) and leaves out one that exits meanwhile.
 */
export class ClusterRegistry extends Registry {
  private nextId = 0;
  private readonly scrapes = new Map<number, Scrape>();

  constructor(
    /** The workers to ask: those whose proxy listens. */
    private readonly workers: () => Worker[],
    /** How long a worker may take to answer before the scrape fails. */
    private readonly timeoutMs = 5000,
  ) {
    super();
    cluster.on('message', (worker, message: unknown) => {
      if (!isMetricsAnswer(message)) return;
      const scrape = this.scrapes.get(message.requestId);
      if (!scrape || !scrape.waiting.has(worker.id)) return;
      if (message.error !== undefined) return this.finish(message.requestId, new Error(`worker ${worker.id}: ${message.error}`));
      scrape.answers.push(message.metrics ?? []);
      this.answered(message.requestId, worker.id);
    });
    // A worker that died has nothing more to say: its counters are gone with it.
    cluster.on('exit', (worker) => {
      for (const id of [...this.scrapes.keys()]) this.answered(id, worker.id);
    });
  }

  /** The workers' metrics, summed, in the Prometheus text format. */
  override async metrics(): Promise<string> {
    return AggregatorRegistry.aggregate(await this.collect()).metrics();
  }

  /** Every listening worker's registry as JSON. */
  private collect(): Promise<WorkerMetrics[]> {
    const requestId = this.nextId++;
    const workers = this.workers();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const late = [...(this.scrapes.get(requestId)?.waiting ?? [])].join(', ');
        this.finish(requestId, new Error(`worker ${late} did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.scrapes.set(requestId, { waiting: new Set(workers.map((worker) => worker.id)), answers: [], resolve, reject, timer });
      const request: MetricsRequest = { type: 'proxyline:metrics-request', requestId };
      // A channel that closed under the send: the worker is on its way out, like one that exited.
      for (const worker of workers) worker.send(request, (error) => error && this.answered(requestId, worker.id));
      if (workers.length === 0) this.finish(requestId);
    });
  }

  private answered(requestId: number, workerId: number): void {
    const scrape = this.scrapes.get(requestId);
    if (!scrape?.waiting.delete(workerId)) return;
    if (scrape.waiting.size === 0) this.finish(requestId);
  }

  private finish(requestId: number, error?: Error): void {
    const scrape = this.scrapes.get(requestId);
    if (!scrape) return;
    this.scrapes.delete(requestId);
    clearTimeout(scrape.timer);
    if (error) scrape.reject(error);
    else scrape.resolve(scrape.answers);
  }
}
