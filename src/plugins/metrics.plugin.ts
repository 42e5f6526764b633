import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import type { ProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { wireLength } from '../core/pipeline.js';
import type { PluginManifest, ProxyPlugin } from '../core/plugin.js';
import { Stage, stage } from '../core/stage.js';
import { MetricsRegistry } from './metrics-registry.js';

export { MetricsRegistry };


/** Upstream connect times, in seconds: loopback (sub-millisecond) to a slow far-away origin. */
const CONNECT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Request durations, in seconds: fast cached answers to long downloads and tunnels. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The metrics of one registry, created once and shared by every plugin instance recording into it. */
class ProxyMetrics {
  readonly connectionsOpen: Gauge;
  readonly connectionsTotal: Counter;
  readonly requests: Counter<'status_class'>;
  readonly bytes: Counter<'direction'>;
  readonly connectSeconds: Histogram;
  readonly durationSeconds: Histogram;
  readonly errors: Counter<'code'>;
  readonly rejections: Counter<'plugin'>;

  constructor(registry: Registry) {
    const registers = [registry];
    // A registry refuses a second metric of the same name: a second proxy, or the plugin listed
    // twice, records into the metrics that are already there.
    const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
    this.connectionsOpen =
      existing<Gauge>('proxyline_connections_open') ??
      new Gauge({ name: 'proxyline_connections_open', help: 'Client connections open now.', registers });
    this.connectionsTotal =
      existing<Counter>('proxyline_connections_total') ??
      new Counter({ name: 'proxyline_connections_total', help: 'Client connections accepted.', registers });
    this.requests =
      existing<Counter<'status_class'>>('proxyline_requests_total') ??
      new Counter({
        name: 'proxyline_requests_total',
        help: 'Requests answered (HTTP responses ended, tunnels closed), by status class of the response.',
        labelNames: ['status_class'],
        registers,
      });
    this.bytes =
      existing<Counter<'direction'>>('proxyline_bytes_total') ??
      new Counter({
        name: 'proxyline_bytes_total',
        help: 'Bytes passing the metrics plugin: inbound towards upstreams, outbound towards clients.',
        labelNames: ['direction'],
        registers,
      });
    // Requests and bytes are counted in plain numbers and handed to prom-client when scraped
    // (`collect`, also on metrics found already registered): a labelled inc hashes its label
    // set, once per request and per chunk otherwise.
    for (const metric of [this.requests, this.bytes] as unknown as { collect?: () => void }[]) metric.collect ??= () => this.flush();
    this.connectSeconds =
      existing<Histogram>('proxyline_upstream_connect_seconds') ??
      new Histogram({
        name: 'proxyline_upstream_connect_seconds',
        help: 'From the request head to a new upstream connection (pooled ones not counted), in seconds.',
        buckets: CONNECT_BUCKETS,
        registers,
      });
    this.durationSeconds =
      existing<Histogram>('proxyline_request_duration_seconds') ??
      new Histogram({
        name: 'proxyline_request_duration_seconds',
        help: 'From the request head to the end of its response (a tunnel: to its close), in seconds.',
        buckets: DURATION_BUCKETS,
        registers,
      });
    this.errors =
      existing<Counter<'code'>>('proxyline_errors_total') ??
      new Counter({
        name: 'proxyline_errors_total',
        help: 'Failed requests and connections, by proxyline error code.',
        labelNames: ['code'],
        registers,
      });
    this.rejections =
      existing<Counter<'plugin'>>('proxyline_rejections_total') ??
      new Counter({
        name: 'proxyline_rejections_total',
        help: 'Requests a plugin answered in the upstream\'s place (refused), by plugin.',
        labelNames: ['plugin'],
        registers,
      });
  }

  /** Bytes counted since the last scrape, inbound and outbound. */
  pendingInbound = 0;
  pendingOutbound = 0;
  /** Requests since the last scrape, by status class (index 1–9 for 1xx–9xx). */
  private readonly pendingClasses: number[] = new Array<number>(10).fill(0);

  /** Hands what was counted since the last scrape to prom-client. */
  private flush(): void {
    if (this.pendingInbound > 0) this.bytes.inc({ direction: 'inbound' }, this.pendingInbound);
    if (this.pendingOutbound > 0) this.bytes.inc({ direction: 'outbound' }, this.pendingOutbound);
    this.pendingInbound = this.pendingOutbound = 0;
    const classes = this.pendingClasses;
    for (let hundreds = 1; hundreds < classes.length; hundreds++) {
      if (classes[hundreds]! > 0) this.requests.inc({ status_class: `${hundreds}xx` }, classes[hundreds]);
      classes[hundreds] = 0;
    }
  }

  /** Records one request whose response ended (or whose tunnel closed). */
  recordExchange(exchange: Exchange): void {
    const now = performance.now();
    const status = exchange.response?.status;
    if (status !== undefined) this.pendingClasses[Math.floor(status / 100)]!++;
    this.durationSeconds.observe((now - exchange.startedAt) / 1000);
    const { connected } = exchange.timings;
    if (connected !== undefined && !exchange.reused) this.connectSeconds.observe((connected - exchange.startedAt) / 1000);
    if (exchange.error) this.errors.inc({ code: exchange.error.code });
    if (exchange.answeredBy) this.rejections.inc({ plugin: exchange.answeredBy });
  }
}

/** One {@link ProxyMetrics} per registry. */
const metricsByRegistry = new WeakMap<Registry, ProxyMetrics>();

/**
 * Prometheus metrics (prom-client) in the `MetricsRegistry` service: connections open and total,
 * requests by status class, bytes each way, upstream connect time, request duration, errors by
 * code and refusals by plugin. Serve the registry with `createAdminServer` (CLI: `--admin-port`).
 */
@injectable()
export class MetricsPlugin implements ProxyPlugin {
  static readonly manifest: PluginManifest = {
    name: 'metrics',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  };
  readonly name = MetricsPlugin.manifest.name;
  /** The metrics this instance records into (shared by every instance on the same registry). */
  private readonly metrics: ProxyMetrics;
  /** Connections counted as open, so a connection whose chain failed to build is not subtracted. */
  private readonly open = new WeakSet<ConnectionContext>();

  constructor(@inject(MetricsRegistry) registry: Registry) {
    let metrics = metricsByRegistry.get(registry);
    if (!metrics) metricsByRegistry.set(registry, (metrics = new ProxyMetrics(registry)));
    this.metrics = metrics;
  }

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    this.metrics.connectionsTotal.inc();
    this.metrics.connectionsOpen.inc();
    this.open.add(ctx);
    return stage((downstream) => new InboundMeter(downstream, this.metrics));
  }

  outbound(): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new OutboundMeter(downstream, this.metrics));
  }

  onClose(ctx: ConnectionContext, error?: ProxyError): void {
    if (this.open.delete(ctx)) this.metrics.connectionsOpen.dec();
    // Failures that were no request's answer (a reset, a response cut off, a shutdown).
    if (error) this.metrics.errors.inc({ code: error.code });
  }
}

/** Counts the bytes of requests (and of tunnels) passing this place in the chain. */
class InboundMeter extends Stage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly metrics: ProxyMetrics,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    this.metrics.pendingInbound += wireLength(event);
    this.emit(event);
  }
}

/**
 * Counts response bytes, and records each request when its response ends. A response that never
 * ends — a tunnel (CONNECT, 101), or one cut off — is recorded when the connection closes.
 */
class OutboundMeter extends Stage {
  /** The exchange whose final response head went by and whose end has not. */
  private relaying?: Exchange;

  constructor(
    downstream: Subscriber<ProxyEvent>,
    private readonly metrics: ProxyMetrics,
  ) {
    super(downstream);
  }

  protected onEvent(event: ProxyEvent): void {
    this.metrics.pendingOutbound += wireLength(event);
    switch (event.kind) {
      case 'response-head':
        // Interim responses (100, 103) are not the answer; a 101 is (a tunnel follows).
        if (event.head.status >= 200 || event.head.status === 101) this.relaying = event.exchange;
        break;
      case 'message-end':
        this.relaying = undefined;
        this.metrics.recordExchange(event.exchange);
    }
    this.emit(event);
  }

  protected override onFinalize(): void {
    const open = this.relaying;
    this.relaying = undefined;
    if (open) this.metrics.recordExchange(open);
  }
}
