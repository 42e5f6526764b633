import { Counter, Gauge, type Registry } from 'prom-client';
import { identity, type MonoTypeOperatorFunction } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ByteCounts, ConnectionContext } from '../core/context.js';
import type { ProxyError } from '../core/errors.js';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import type { PluginManifest, ProxyPlugin } from '../core/plugin.js';
import { ProxyStats } from '../core/stats.js';
import { BucketHistogram } from './metrics-histogram.js';
import { MetricsRegistry } from './metrics-registry.js';

export { MetricsRegistry };

/** Upstream connect times, in seconds: loopback (sub-millisecond) to a slow far-away origin. */
const CONNECT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Request durations, in seconds: fast cached answers to long downloads and tunnels. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The {@link ProxyStats} counters, each exported as a Prometheus counter read when scraped. */
const STATS_COUNTERS: readonly { key: keyof ProxyStats; name: string; help: string }[] = [
  { key: 'connectionsRefused', name: 'proxyline_connections_refused_total', help: 'Client connections closed at accept because maxConnections were open.' },
  { key: 'acceptErrors', name: 'proxyline_accept_errors_total', help: "Failed accepts (EMFILE, ENFILE, …): the kernel's connection was dropped." },
  { key: 'dialNoResources', name: 'proxyline_dial_no_resources_total', help: 'Upstream dials that failed for lack of file descriptors (answered 503).' },
  { key: 'logDropped', name: 'proxyline_log_dropped_total', help: 'Access-log records dropped: their destination could not keep up, or failed.' },
  { key: 'captureDropped', name: 'proxyline_capture_dropped_total', help: 'Capture records dropped: their file could not keep up, or failed.' },
  {
    key: 'tlsHandshakeErrors',
    name: 'proxyline_tls_handshake_errors_total',
    help: 'Client connections to the TLS listener closed before their handshake completed.',
  },
  {
    key: 'rateLimitStoreErrors',
    name: 'proxyline_rate_limit_store_errors_total',
    help: 'rate-limit calls to its Redis store that failed or timed out, answered by its onError.',
  },
  {
    key: 'socksHandshakeErrors',
    name: 'proxyline_socks_handshake_errors_total',
    help: 'SOCKS5 handshakes that ended without a connection (malformed, refused, stalled).',
  },
];

/** The metrics of one registry, created once and shared by every plugin instance recording into it. */
class ProxyMetrics {
  readonly connectionsOpen: Gauge;
  readonly connectionsTotal: Counter;
  readonly requests: Counter<'status_class'>;
  readonly bytes: Counter<'direction'>;
  readonly connectSeconds: BucketHistogram;
  readonly durationSeconds: BucketHistogram;
  readonly errors: Counter<'code'>;
  readonly rejections: Counter<'plugin'>;
  /** The STATS_COUNTERS, in order. */
  private readonly statsCounters: Counter[];

  constructor(registry: Registry) {
    const registers = [registry];
    // A registry refuses a second metric of the same name: a second proxy, or the plugin listed
    // twice, records into the metrics that are already there.
    const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
    this.connectionsOpen =
      existing<Gauge>('proxyline_connections_open') ?? new Gauge({ name: 'proxyline_connections_open', help: 'Client connections open now.', registers });
    this.connectionsTotal =
      existing<Counter>('proxyline_connections_total') ?? new Counter({ name: 'proxyline_connections_total', help: 'Client connections accepted.', registers });
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
        help: 'Bytes counted by byte-counter: inbound towards upstreams, outbound towards clients.',
        labelNames: ['direction'],
        registers,
      });
    // Requests and bytes are counted in plain numbers and handed to prom-client when scraped
    // (`collect`, also on metrics found already registered): a labelled inc hashes its label
    // set, once per request and per chunk otherwise.
    for (const metric of [this.requests, this.bytes] as unknown as { collect?: () => void }[]) metric.collect ??= () => this.flush();
    this.connectSeconds =
      existing<BucketHistogram>('proxyline_upstream_connect_seconds') ??
      new BucketHistogram(
        'proxyline_upstream_connect_seconds',
        'From the request head to a new upstream connection (pooled ones not counted), in seconds.',
        CONNECT_BUCKETS,
        registry,
      );
    this.durationSeconds =
      existing<BucketHistogram>('proxyline_request_duration_seconds') ??
      new BucketHistogram(
        'proxyline_request_duration_seconds',
        'From the request head to the end of its response (a tunnel: to its close), in seconds.',
        DURATION_BUCKETS,
        registry,
      );
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
        help: "Requests a plugin answered in the upstream's place (refused), by plugin.",
        labelNames: ['plugin'],
        registers,
      });
    this.statsCounters = STATS_COUNTERS.map(({ name, help }) => existing<Counter>(name) ?? new Counter({ name, help, registers }));
    // Plain numbers kept by the core and plugins, handed over when scraped like the requests.
    for (const metric of this.statsCounters as unknown as { collect?: () => void }[]) metric.collect ??= () => this.flushStats();
  }

  /** The counters of every proxy recording into this registry (their sums are exported). */
  private readonly stats = new Set<ProxyStats>();
  /** What the STATS_COUNTERS have been given so far, in order. */
  private readonly statsCounted: number[] = STATS_COUNTERS.map(() => 0);

  /** Adds the counters of one more proxy. */
  addStats(stats: ProxyStats): void {
    this.stats.add(stats);
  }

  /** Hands what the ProxyStats counted since the last scrape to prom-client. */
  private flushStats(): void {
    for (let i = 0; i < STATS_COUNTERS.length; i++) {
      const { key } = STATS_COUNTERS[i]!;
      let total = 0;
      for (const stats of this.stats) total += stats[key];
      if (total > this.statsCounted[i]!) this.statsCounters[i]!.inc(total - this.statsCounted[i]!);
      this.statsCounted[i] = Math.max(total, this.statsCounted[i]!);
    }
  }

  /** Bytes counted since the last scrape, inbound and outbound. */
  private pendingInbound = 0;
  private pendingOutbound = 0;
  /**
   * The open connections, each with the part of its byte counts (`ctx.bytes`, from byte-counter)
   * already added. Read when scraped and when a connection closes: nothing to do per chunk.
   */
  private readonly open = new Map<ConnectionContext, ByteCounts>();

  /** Counts a new connection. */
  opened(ctx: ConnectionContext): void {
    this.connectionsTotal.inc();
    this.connectionsOpen.inc();
    this.open.set(ctx, { inbound: 0, outbound: 0 });
  }

  /** Counts a connection's last bytes and its end (nothing for one that was never counted open). */
  closed(ctx: ConnectionContext): void {
    const counted = this.open.get(ctx);
    if (!counted) return;
    this.open.delete(ctx);
    this.countBytes(ctx, counted);
    this.connectionsOpen.dec();
  }

  private countBytes(ctx: ConnectionContext, counted: ByteCounts): void {
    this.pendingInbound += ctx.bytes.inbound - counted.inbound;
    this.pendingOutbound += ctx.bytes.outbound - counted.outbound;
    counted.inbound = ctx.bytes.inbound;
    counted.outbound = ctx.bytes.outbound;
  }
  /** Requests since the last scrape, by status class (index 1–9 for 1xx–9xx). */
  private readonly pendingClasses: number[] = new Array<number>(10).fill(0);

  /** Hands what was counted since the last scrape to prom-client. */
  private flush(): void {
    for (const [ctx, counted] of this.open) this.countBytes(ctx, counted);
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
    const now = exchange.timings.ended ?? performance.now();
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
 * requests by status class, bytes each way (as byte-counter counts them), upstream connect time,
 * request duration, errors by code, refusals by plugin, and the proxy-wide {@link ProxyStats}
 * counters (refused connections, failed accepts, dials short of descriptors, dropped access-log
 * and capture records, failed TLS handshakes). No stage of its own: it reads the counts when a request ends, when a connection closes
 * and when scraped. Serve the registry with `createAdminServer` (CLI: `--admin-port`).
 */
@injectable()
export class MetricsPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'metrics',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    after: ['byte-counter'], // the bytes are its counts
  };
  readonly name = MetricsPlugin.manifest.name;
  /** The metrics this instance records into (shared by every instance on the same registry). */
  private readonly metrics: ProxyMetrics;

  constructor(@inject(MetricsRegistry) registry: Registry, @inject(ProxyStats) stats: ProxyStats) {
    let metrics = metricsByRegistry.get(registry);
    if (!metrics) metricsByRegistry.set(registry, (metrics = new ProxyMetrics(registry)));
    metrics.addStats(stats);
    this.metrics = metrics;
  }

  /** Counts the connection (called once per connection); the events pass untouched. */
  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    this.metrics.opened(ctx);
    return identity;
  }

  onExchangeEnd(_ctx: ConnectionContext, exchange: Exchange | undefined, error?: ProxyError): void {
    if (exchange) this.metrics.recordExchange(exchange);
    // Failures that were no request's answer (a reset, a response cut off, a shutdown).
    if (error) this.metrics.errors.inc({ code: error.code });
  }

  onClose(ctx: ConnectionContext): void {
    this.metrics.closed(ctx);
  }
}
