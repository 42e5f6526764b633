// The messages the primary and its workers exchange over the cluster IPC channel. Each has a
// `type` starting "proxyline:", so they never meet prom-client's or Node's own.
import type { Registry } from 'prom-client';
import type { BoundAddress } from '../core/transport.js';

/** One worker's registry, as `registry.getMetricsAsJSON()` gives it. */
export type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Worker → primary: the proxy listens (sent once, after `listen()` resolved). */
export interface ReadyMessage {
  readonly type: 'proxyline:ready';
  readonly address: BoundAddress;
  /** The ready lines a single process would print (`proxyline listening on …`, a SOCKS5 line): the primary prints them. */
  readonly lines: readonly string[];
}

/** Primary → worker: send your registry's metrics as JSON. */
export interface MetricsRequest {
  readonly type: 'proxyline:metrics-request';
  readonly requestId: number;
}

/** Worker → primary: the answer to a {@link MetricsRequest}, the metrics or why there are none. */
export interface MetricsAnswer {
  readonly type: 'proxyline:metrics';
  readonly requestId: number;
  readonly metrics?: WorkerMetrics;
  readonly error?: string;
}

/** Whether `message` is a {@link ReadyMessage}. */
export function isReady(message: unknown): message is ReadyMessage {
  return (message as ReadyMessage | undefined)?.type === 'proxyline:ready';
}

/** Whether `message` is a {@link MetricsRequest}. */
export function isMetricsRequest(message: unknown): message is MetricsRequest {
  return (message as MetricsRequest | undefined)?.type === 'proxyline:metrics-request';
}

/** Whether `message` is a {@link MetricsAnswer}. */
export function isMetricsAnswer(message: unknown): message is MetricsAnswer {
  return (message as MetricsAnswer | undefined)?.type === 'proxyline:metrics';
}
