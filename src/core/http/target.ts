import { badRequest } from '../errors.js';
import type { Target } from '../context.js';

const REG_NAME = /^[A-Za-z0-9\-._~%!$&'()*+,;=]+$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/**
 * Parses `host[:port]` (RFC 9110 §4.2.1 / RFC 3986 authority without userinfo): a reg-name,
 * an IPv4 address or a bracketed IPv6 address. The host comes back without brackets.
 */
export function parseAuthority(authority: string, defaultPort?: number): Target {
  let host: string;
  let rest: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw badRequest(`malformed IPv6 address in ${authority}`);
    host = authority.slice(1, close);
    if (!IPV6.test(host) || !host.includes(':')) throw badRequest(`malformed IPv6 address in ${authority}`);
    rest = authority.slice(close + 1);
  } else {
    const colon = authority.lastIndexOf(':');
    host = colon < 0 ? authority : authority.slice(0, colon);
    rest = colon < 0 ? '' : authority.slice(colon);
    if (!REG_NAME.test(host)) throw badRequest(`malformed host in ${authority || 'an empty authority'}`);
  }
  if (rest === '') {
    if (defaultPort === undefined) throw badRequest(`target ${authority} needs a port`);
    return { host, port: defaultPort };
  }
  if (!/^:\d{1,5}$/.test(rest)) throw badRequest(`malformed port in ${authority}`);
  const port = Number(rest.slice(1));
  if (port < 1 || port > 65535) throw badRequest(`port out of range in ${authority}`);
  return { host, port };
}

/** An `http://` absolute-form target split into where it goes and what the origin is asked for. */
export interface AbsoluteTarget extends Target {
  /** The authority as written (used for the Host header). */
  authority: string;
  /** origin-form: path and query, at least `/`; the fragment is dropped. */
  path: string;
}

/** Parses an absolute-form request target with the `http` scheme (RFC 9112 §3.2.2). */
export function parseAbsoluteHttpTarget(target: string): AbsoluteTarget {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(target);
  if (!scheme) {
    throw badRequest('this is a proxy: the request target must be an absolute URL like http://host/path');
  }
  if (scheme[1]!.toLowerCase() !== 'http') {
    throw badRequest(`scheme ${scheme[1]} is not proxied as plain HTTP; use CONNECT for https`);
  }
  const afterScheme = target.slice(scheme[0].length);
  const authorityEnd = afterScheme.search(/[/?#]/);
  const authority = authorityEnd < 0 ? afterScheme : afterScheme.slice(0, authorityEnd);
  if (authority.includes('@')) throw badRequest('credentials in the request URL are not accepted');
  let path = authorityEnd < 0 ? '' : afterScheme.slice(authorityEnd);
  const fragment = path.indexOf('#');
  if (fragment >= 0) path = path.slice(0, fragment);
  if (!path.startsWith('/')) path = '/' + path;
  return { ...parseAuthority(authority, 80), authority, path };
}
