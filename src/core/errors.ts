/** How one error code answers the client. */
export interface ErrorTableEntry {
  /** HTTP status of the answer; 0 when the connection closes without one. */
  readonly status: number;
  /** Reason phrase of that status line, or what the logs call a code that sends no response. */
  readonly reason: string;
}

/** Builds a table row, so each row's type is the documented {@link ErrorTableEntry}, not an anonymous literal. */
const entry = (status: number, reason: string): ErrorTableEntry => ({ status, reason });

/**
 * The one table of proxyline error codes. Every failure a connection can meet maps to a code here,
 * and the code decides the HTTP status the client sees (or that the connection just closes).
 */
export const ERROR_TABLE = {
  /** The request is malformed or ambiguous. */
  ERR_PROXY_BAD_REQUEST: entry(400, 'Bad Request'),
  /** Proxy credentials are missing or wrong. */
  ERR_PROXY_AUTH_REQUIRED: entry(407, 'Proxy Authentication Required'),
  /** A policy plugin refused the destination. */
  ERR_PROXY_FORBIDDEN: entry(403, 'Forbidden'),
  /** The client did not finish sending a request head in time. */
  ERR_PROXY_HEADERS_TIMEOUT: entry(408, 'Request Timeout'),
  /** The client paused inside a request body for longer than allowed. */
  ERR_PROXY_BODY_TIMEOUT: entry(408, 'Request Timeout'),
  /** The client sent a request body slower than the minimum rate. */
  ERR_PROXY_BODY_TOO_SLOW: entry(408, 'Request Timeout'),
  /** A rate limit was exceeded. */
  ERR_PROXY_RATE_LIMITED: entry(429, 'Too Many Requests'),
  /** The client has more connections open than its cap allows. */
  ERR_PROXY_TOO_MANY_CONNECTIONS: entry(429, 'Too Many Requests'),
  /** The request head is larger than the configured limit. */
  ERR_PROXY_HEADERS_TOO_LARGE: entry(431, 'Request Header Fields Too Large'),
  /** The upstream could not be reached (refused, unknown name, reset before a response). */
  ERR_PROXY_UPSTREAM_CONNECT: entry(502, 'Bad Gateway'),
  /** A parent proxy was reached but refused or failed the request (its 407, 403, 502, a SOCKS reply other than success). */
  ERR_PROXY_PARENT: entry(502, 'Bad Gateway'),
  /** The upstream's response is malformed or ambiguous. */
  ERR_PROXY_BAD_RESPONSE: entry(502, 'Bad Gateway'),
  /** The proxy is out of file descriptors (EMFILE/ENFILE) and cannot open an upstream connection. */
  ERR_PROXY_NO_RESOURCES: entry(503, 'Service Unavailable'),
  /** Connecting to the upstream took longer than allowed. */
  ERR_PROXY_UPSTREAM_TIMEOUT: entry(504, 'Gateway Timeout'),
  /** The request was sent, but no response head came within the response timeout. */
  ERR_PROXY_RESPONSE_TIMEOUT: entry(504, 'Gateway Timeout'),
  /** The upstream paused inside a response body for longer than allowed; the response is cut. */
  ERR_PROXY_RESPONSE_IDLE: entry(504, 'Gateway Timeout'),
  /** No byte went either way through a tunnel for longer than allowed; both sides are closed. */
  ERR_PROXY_TUNNEL_IDLE: entry(0, 'Tunnel idle'),
  /** A peer went away; the connection closes without a response. */
  ERR_PROXY_ABORTED: entry(0, 'Aborted'),
  /** A bug or unexpected failure; the message is logged, never sent to the client. */
  ERR_PROXY_INTERNAL: entry(500, 'Internal Server Error'),
  /** plugins.json (or a plugin list given in code) is invalid; start-up stops. */
  ERR_PROXY_CONFIG: entry(0, 'Invalid configuration'),
} as const;

/** One of the codes of {@link ERROR_TABLE}. */
export type ProxyErrorCode = keyof typeof ERROR_TABLE;

/** An error with a code from the table; `status` is the HTTP status it maps to (0: no response). */
export class ProxyError extends Error {
  /** Which row of {@link ERROR_TABLE} this is: what logs, metrics and tests match on. */
  readonly code: ProxyErrorCode;
  /** The HTTP status the client is answered with; 0 when the connection just closes. */
  readonly status: number;
  /** Whether `message` may be shown to the client (internal errors hide it). */
  readonly expose: boolean;
  /** Extra response fields, e.g. `Proxy-Authenticate` for 407 or `Retry-After` for 429. */
  readonly headers: readonly (readonly [string, string])[];

  constructor(code: ProxyErrorCode, message: string, options?: { cause?: unknown; headers?: readonly (readonly [string, string])[] }) {
    super(message, options);
    this.name = 'ProxyError';
    this.code = code;
    this.status = ERROR_TABLE[code].status;
    this.expose = code !== 'ERR_PROXY_INTERNAL';
    this.headers = options?.headers ?? [];
  }
}

/** Turns anything thrown into a ProxyError: ProxyErrors pass, everything else is internal. */
export function toProxyError(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ProxyError('ERR_PROXY_INTERNAL', message, { cause: error });
}

/** Shorthands for the errors plugins raise most. */
export const badRequest = (message: string) => new ProxyError('ERR_PROXY_BAD_REQUEST', message);
/** A peer went away: the connection closes with no response. */
export const aborted = (message: string) => new ProxyError('ERR_PROXY_ABORTED', message);
