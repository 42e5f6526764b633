import { badRequest } from '../errors.js';
import type { Target } from '../context.js';

/** RFC 3986 reg-name characters (unreserved, pct-encoded's `%`, sub-delims), as a lookup table. */
const REG_NAME = new Uint8Array(128);
for (const c of "-._~%!$&'()*+,;=") REG_NAME[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) REG_NAME[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) REG_NAME[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) REG_NAME[c] = 1;

const IPV6 = /^[0-9A-Fa-f:.]+$/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/** Whether `authority[start, end)` is a non-empty reg-name (or IPv4 address). */
function isRegName(authority: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) if (REG_NAME[authority.charCodeAt(i)] !== 1) return false;
  return true;
}

/** The port in `authority[start, end)`: 1–5 digits, 1–65535; -1 when malformed, 0 when out of range. */
function parsePort(authority: string, start: number, end: number): number {
  if (end <= start || end - start > 5) return -1;
  let port = 0;
  for (let i = start; i < end; i++) {
    const digit = authority.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    port = port * 10 + digit;
  }
  return port >= 1 && port <= 65535 ? port : 0;
}

/**
 * Parses `host[:port]` (RFC 9110 §4.2.1 / RFC 3986 authority without userinfo): a reg-name,
 * an IPv4 address or a bracketed IPv6 address. The host comes back without brackets. Scanned by
 * hand, not by regular expressions: it runs for every request.
 */
export function parseAuthority(authority: string, defaultPort?: number): Target {
  let host: string;
  let portStart: number; // index of the ':' before the port, or authority.length when none
  if (authority.charCodeAt(0) === 0x5b /* [ */) {
    const close = authority.indexOf(']');
    if (close < 0) throw badRequest(`malformed IPv6 address in ${authority}`);
    host = authority.slice(1, close);
    if (!IPV6.test(host) || !host.includes(':')) throw badRequest(`malformed IPv6 address in ${authority}`);
    portStart = close + 1;
    if (portStart < authority.length && authority.charCodeAt(portStart) !== 0x3a) throw badRequest(`malformed port in ${authority}`);
  } else {
    const colon = authority.lastIndexOf(':');
    portStart = colon < 0 ? authority.length : colon;
    if (!isRegName(authority, 0, portStart)) throw badRequest(`malformed host in ${authority || 'an empty authority'}`);
    host = portStart === authority.length ? authority : authority.slice(0, portStart);
  }
  if (portStart === authority.length) {
    if (defaultPort === undefined) throw badRequest(`target ${authority} needs a port`);
    return { host, port: defaultPort };
  }
  const port = parsePort(authority, portStart + 1, authority.length);
  if (port < 0) throw badRequest(`malformed port in ${authority}`);
  if (port === 0) throw badRequest(`port out of range in ${authority}`);
  return { host, port };
}

/** An `http://` absolute-form target split into where it goes and what the origin is asked for. */
export interface AbsoluteTarget extends Target {
  /** The authority as written (used for the Host header). */
  authority: string;
  /** origin-form: path and query, at least `/`; the fragment is dropped. */
  path: string;
}

/** Whether `target` starts with `http://`, the scheme compared case-insensitively. */
function hasHttpScheme(target: string): boolean {
  return target.startsWith('http://') || target.slice(0, 7).toLowerCase() === 'http://';
}

/** Parses an absolute-form request target with the `http` scheme (RFC 9112 §3.2.2). */
export function parseAbsoluteHttpTarget(target: string): AbsoluteTarget {
  if (!hasHttpScheme(target)) {
    const scheme = SCHEME.exec(target);
    if (!scheme) throw badRequest('this is a proxy: the request target must be an absolute URL like http://host/path');
    throw badRequest(`scheme ${scheme[1]} is not proxied as plain HTTP; use CONNECT for https`);
  }
  let authorityEnd = 7;
  for (; authorityEnd < target.length; authorityEnd++) {
    const c = target.charCodeAt(authorityEnd);
    if (c === 0x2f /* / */ || c === 0x3f /* ? */ || c === 0x23 /* # */) break;
  }
  const authority = target.slice(7, authorityEnd);
  if (authority.includes('@')) throw badRequest('credentials in the request URL are not accepted');
  const fragment = target.indexOf('#', authorityEnd);
  let path = target.slice(authorityEnd, fragment < 0 ? target.length : fragment);
  if (path.charCodeAt(0) !== 0x2f) path = '/' + path;
  const { host, port } = parseAuthority(authority, 80);
  return { host, port, authority, path };
}
