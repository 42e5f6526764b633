// Its own module so that the plugin and the line writer both take it without importing each other.

/** One access-log record, as the `json` format writes it. */
export interface AccessRecord {
  /** When the request head arrived (ISO 8601). */
  time: string;
  /** Client IP address. */
  client: string;
  /** The authenticated proxy user, or null. */
  user: string | null;
  /** Request method; null for a failure outside any request. */
  method: string | null;
  /** The request target as the client sent it (absolute URL, or host:port for CONNECT). */
  target: string | null;
  /** The final response status (the error's status when the proxy answered); null when none was sent. */
  status: number | null;
  /** Bytes towards the upstream and towards the client, as counted by `byte-counter`. */
  bytesIn: number;
  bytesOut: number;
  /** Milliseconds (one decimal) from the request head to the upstream being ready, to its first byte, to the end. */
  connectMs: number | null;
  firstByteMs: number | null;
  totalMs: number;
  /** Whether the upstream connection came from the pool. */
  reused: boolean;
  /** The plugin that answered in the upstream's place, if one did. */
  answeredBy?: string;
  /** The error code, when the request or the connection failed. */
  error?: string;
  /** The names of the faults that fired for it (the `faults` plugin), in order; absent when none did. */
  faults?: string[];
}
