/**
 * The one table of proxyline error codes. Every failure a connection can meet maps to a code here,
 * and the code decides the HTTP status the client sees (or that the connection just closes).
 */
export const ERROR_TABLE = {
  /** The request is malformed or ambiguous. */
  ERR_PROXY_BAD_REQUEST: { status: 400, reason: 'Bad Request' },
  /** Proxy credentials are missing or wrong. */
  ERR_PROXY_AUTH_REQUIRED: { status: 407, reason: 'Proxy Authentication Required' },
  /** A policy plugin refused the destination. */
  ERR_PROXY_FORBIDDEN: { status: 403, reason: 'Forbidden' },
  /** The client did not finish sending a request head in time. */
  ERR_PROXY_HEADERS_TIMEOUT: { status: 408, reason: 'Request Timeout' },
  /** The client paused inside a request body for longer than allowed. */
  ERR_PROXY_BODY_TIMEOUT: { status: 408, reason: 'Request Timeout' },
  /** The client sent a request body slower than the minimum rate. */
  ERR_PROXY_BODY_TOO_SLOW: { status: 408, reason: 'Request Timeout' },
  /** A rate limit was exceeded. */
  ERR_PROXY_RATE_LIMITED: { status: 429, reason: 'Too Many Requests' },
  /** The client has more connections open than its cap allows. */
  ERR_PROXY_TOO_MANY_CONNECTIONS: { status: 429, reason: 'Too Many Requests' },
  /** The request head is larger than the configured limit. */
  ERR_PROXY_HEADERS_TOO_LARGE: { status: 431, reason: 'Request Header Fields Too Large' },
  /** The upstream could not be reached (refused, unknown name, reset before a response). */
  ERR_PROXY_UPSTREAM_CONNECT: { status: 502, reason: 'Bad Gateway' },
  /** The upstream's response is malformed or ambiguous. */
  ERR_PROXY_BAD_RESPONSE: { status: 502, reason: 'Bad Gateway' },
  /** The proxy is out of file descriptors (EMFILE/ENFILE) and cannot open an upstream connection. */
  ERR_PROXY_NO_RESOURCES: { status: 503, reason: 'Service Unavailable' },
  /** Connecting to the upstream took longer than allowed. */
  ERR_PROXY_UPSTREAM_TIMEOUT: { status: 504, reason: 'Gateway Timeout' },
  /** The request was sent, but no response head came within the response timeout. */
  ERR_PROXY_RESPONSE_TIMEOUT: { status: 504, reason: 'Gateway Timeout' },
  /** The upstream paused inside a response body for longer than allowed; the response is cut. */
  ERR_PROXY_RESPONSE_IDLE: { status: 504, reason: 'Gateway Timeout' },
  /** No byte went either way through a tunnel for longer than allowed; both sides are closed. */
  ERR_PROXY_TUNNEL_IDLE: { status: 0, reason: 'Tunnel idle' },
  /** A peer went away; the connection closes without a response. */
  ERR_PROXY_ABORTED: { status: 0, reason: 'Aborted' },
  /** A bug or unexpected failure; the message is logged, never sent to the client. */
  ERR_PROXY_INTERNAL: { status: 500, reason: 'Internal Server Error' },
  /** plugins.json (or a plugin list given in code) is invalid; start-up stops. */
  ERR_PROXY_CONFIG: { status: 0, reason: 'Invalid configuration' },
} as const satisfies Record<string, { status: number; reason: string }>;

/** One of the codes of {@link ERROR_TABLE}. */
export type ProxyErrorCode = keyof typeof ERROR_TABLE;

/** An error with a code from the table; `status` is the HTTP status it maps to (0: no response). */
export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
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
export const aborted = (message: string) => new ProxyError('ERR_PROXY_ABORTED', message);
