// Where a captured request went, as a URL and as a host name, for both readers.
import { getHeader } from '../core/http/head.js';
import type { CaptureRecord } from '../plugins/capture-record.js';

/**
 * The request's absolute URL (no fragment): the target itself in absolute-form, the Host field and
 * the path in origin-form, `https://host:port/` for a CONNECT to port 443 (`http://` otherwise).
 */
export function absoluteUrl(request: NonNullable<CaptureRecord['request']>): string {
  const { target } = request;
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(target)) {
    const hash = target.indexOf('#');
    return hash < 0 ? target : target.slice(0, hash);
  }
  if (request.method.toUpperCase() === 'CONNECT') return `${target.endsWith(':443') ? 'https' : 'http'}://${target}/`;
  const host = getHeader(request.headers, 'host') ?? 'unknown-host';
  return `http://${host}${target.startsWith('/') ? target : `/${target}`}`;
}

/** The upstream's `host` or `host:port` (its port shown unless 80, or 443 for a tunnel); what the request named when it was not routed. */
export function hostOf(record: CaptureRecord): string {
  if (record.upstream) {
    const { host, port } = record.upstream;
    const shown = host.includes(':') ? `[${host}]` : host;
    return port === 80 || (port === 443 && record.kind === 'tunnel') ? shown : `${shown}:${port}`;
  }
  if (!record.request) return '(no request)';
  try {
    return new URL(absoluteUrl(record.request)).host || '(unknown)';
  } catch {
    return '(unknown)';
  }
}
