import type { FaultDecision } from '../core/exchange.js';
import type { HeaderField } from '../core/http/head.js';

/**
 * One line of a capture file (JSON), written by the `capture` plugin when an exchange ends (a
 * tunnel when it closes) and read by `proxyline har` and `proxyline report`. Times are
 * milliseconds from `startedAt`, one decimal; `null` where a phase was never reached.
 */
export interface CaptureRecord {
  /** Format version: readers refuse a version they do not know. */
  v: 1;
  /** `http`: a request and its response; `tunnel`: a CONNECT or a 101 upgrade; `failure`: a connection that failed outside any request. */
  kind: 'http' | 'tunnel' | 'failure';
  /** Connection ordinal: 1, 2, … in the order the proxy accepted them. */
  connection: number;
  /** Request ordinal on its connection: 1, 2, …; 0 for a failure outside any request. */
  exchange: number;
  /** The client's address and port. */
  client: { address: string; port: number };
  /** When the request head arrived (ISO 8601, UTC, milliseconds). */
  startedAt: string;
  /** The request head as the client sent it; null for a failure outside any request. */
  request: { method: string; target: string; version: string; headers: HeaderField[] } | null;
  /** The final response head the client got (the proxy's own answer included); null when none was sent. */
  response: { version: string; status: number; reason: string; headers: HeaderField[] } | null;
  /** Where the request went (host and port), when it was routed. */
  upstream: { host: string; port: number } | null;
  /** Whether the upstream connection came from the pool. */
  reused: boolean;
  /** Phase ends, from `startedAt`: upstream ready, first response byte, the end. */
  timings: { connectMs: number | null; firstByteMs: number | null; endMs: number };
  /** Bytes towards the upstream and towards the client (as `byte-counter` counts them; 0 without it). */
  bytes: { in: number; out: number };
  /** Up to `maxBodyBytes` of the request body as the client sent it (base64), when bodies are captured. */
  requestBody?: { base64: string; truncated: boolean };
  /** Up to `maxBodyBytes` of the response body as the client got it (base64, chunk framing included), when bodies are captured. */
  responseBody?: { base64: string; truncated: boolean };
  /** The faults that fired for it, in the order they were drawn (empty when none). */
  faults: FaultDecision[];
  /** The plugin that answered in the upstream's place, if one did. */
  answeredBy?: string;
  /** Why it failed, when it did. */
  error?: { code: string; message: string };
}
