import type { Metric, MetricValueWithName, Registry } from 'prom-client';

/** What a registry reads from a metric when it serves it (prom-client's typings give `type` as a numeric enum; it is a string). */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: 'histogram';
  values: MetricValueWithName<string>[];
  aggregator: 'sum';
}

/**
 * A Prometheus histogram without labels, registered in a prom-client registry, which serves it
 * as it serves its own. Observing is a bucket search and three additions: prom-client's
 * `Histogram.observe` checks and hashes a label set on every call, a cost paid here once or twice
 * per request.
 */
export class BucketHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    /** Metric name; the series are `<name>_bucket`, `<name>_sum` and `<name>_count`. */
    readonly name: string,
    /** The HELP text. */
    readonly help: string,
    /** Upper bounds of the buckets, ascending (+Inf is implied). */
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
    registry.registerMetric(this as unknown as Metric);
  }

  /** Records one value (in the first bucket whose bound is at least the value). */
  observe(value: number): void {
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
    this.counts[bucket]!++;
    this.sum += value;
    this.count++;
  }

  /** What the registry serves: cumulative buckets, then the sum and the count. */
  get(): Promise<MetricSnapshot> {
    const values: MetricValueWithName<string>[] = [];
    let below = 0;
    this.bounds.forEach((le, bucket) => {
      below += this.counts[bucket]!;
      values.push({ labels: { le }, value: below, metricName: `${this.name}_bucket` });
    });
    values.push(
      { labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` },
      { labels: {}, value: this.sum, metricName: `${this.name}_sum` },
      { labels: {}, value: this.count, metricName: `${this.name}_count` },
    );
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** Forgets every observation (`registry.resetMetrics()`). */
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}
