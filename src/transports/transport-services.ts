import type { Logger } from '../core/logger.js';
import type { ProxyStats } from '../core/stats.js';

/**
 * What the TCP transports report to when the process runs out of file descriptors: plain
 * constructor options rather than injected services, since createProxy builds the transports
 * itself (and an embedder may build them by hand). createProxy passes the container's own.
 */
export interface TransportServices {
  /** Where the once-a-second warnings go (default: a StreamLogger on stderr). */
  logger?: Logger;
  /** The counters to add to (default: fresh ones that nothing reads). */
  stats?: ProxyStats;
}

/** Whether an errno code means no descriptor was left: the process's limit (EMFILE) or the system's (ENFILE). */
export function isOutOfDescriptors(code: string | undefined): boolean {
  return code === 'EMFILE' || code === 'ENFILE';
}
