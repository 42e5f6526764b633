// What a worker does beside running the proxy as a single process would: tell the primary it
// listens, and answer its requests for metrics.
import cluster from 'node:cluster';
import type { Registry } from 'prom-client';
import type { BoundAddress } from '../core/transport.js';
import { isMetricsRequest, type MetricsAnswer, type ReadyMessage } from './messages.js';

/** Sends `message` to the primary; a closed channel (the primary is gone) is ignored: Node ends the worker then. */
function toPrimary(message: ReadyMessage | MetricsAnswer): void {
  process.send?.(message, undefined, undefined, () => undefined);
}

/** The cluster's id of this worker (0 outside a cluster worker). */
export function workerId(): number {
  return cluster.worker?.id ?? 0;
}

/** Tells the primary that this worker's proxy listens at `address`, with the ready lines to print. */
export function reportReady(address: BoundAddress, lines: readonly string[]): void {
  toPrimary({ type: 'proxyline:ready', address, lines });
}

/** Answers the primary's requests for metrics with `registry`'s, as JSON (the primary sums them). */
export function answerMetricsRequests(registry: Registry): void {
  process.on('message', (message: unknown) => {
    if (!isMetricsRequest(message)) return;
    const { requestId } = message;
    registry.getMetricsAsJSON().then(
      (metrics) => toPrimary({ type: 'proxyline:metrics', requestId, metrics }),
      (error: unknown) => toPrimary({ type: 'proxyline:metrics', requestId, error: (error as Error).message }),
    );
  });
}
