import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { ParentProxy, UpstreamHop } from '../core/transport.js';

/** The port as written after the host (IPv6 in brackets), userinfo skipped. */
const WRITTEN_PORT = /^[a-z0-9+.-]+:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/]*):(\d+)/i;

/** Default port of each parent protocol when the URL has none. */
const DEFAULT_PORTS = { http: 3128, https: 443, socks5: 1080 } as const;

/**
 * Parses `direct` or a parent proxy URL (`http://[user:pass@]host:port`, `https://…`,
 * `socks5://…`) into a hop; `ca` is the PEM an https parent is checked against. Throws an Error
 * that names `where` and never shows the password.
 */
export function parseHop(text: string, where: string, ca?: Buffer): UpstreamHop {
  if (text === 'direct') return 'direct';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${where}: expected "direct" or a URL like http://host:3128, found ${JSON.stringify(redact(text))}`);
  }
  const protocol = url.protocol.slice(0, -1);
  if (protocol !== 'http' && protocol !== 'https' && protocol !== 'socks5') {
    throw new Error(`${where}: expected a http://, https:// or socks5:// URL, found scheme ${JSON.stringify(url.protocol)}`);
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new Error(`${where}: expected a URL with no path, query or fragment, found ${JSON.stringify(redact(text))}`);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw new Error(`${where}: expected a host in ${JSON.stringify(redact(text))}`);
  // URL drops a port equal to the scheme's default (http://parent:80 has port ''): read it as written.
  const written = WRITTEN_PORT.exec(text)?.[1];
  const port = url.port !== '' ? Number(url.port) : written !== undefined ? Number(written) : DEFAULT_PORTS[protocol];
  const username = url.username === '' ? undefined : decodeURIComponent(url.username);
  const password = username === undefined ? undefined : decodeURIComponent(url.password);
  if (protocol === 'socks5' && username !== undefined && (Buffer.byteLength(username) > 255 || Buffer.byteLength(password!) > 255)) {
    throw new Error(`${where}: SOCKS5 user name and password are at most 255 bytes each`);
  }
  const authority = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  const name = protocol === 'socks5' ? `${authority} (socks5)` : protocol === 'https' ? `${authority} (https)` : authority;
  // The pool tells parents apart by their credentials too, without holding them in clear.
  const secret = username === undefined ? '' : `#${createHash('sha256').update(`${username}\0${password}`).digest('base64url').slice(0, 16)}`;
  const parent: ParentProxy = {
    protocol,
    host,
    port,
    username,
    password,
    name,
    key: `${protocol}://${authority}${secret}`,
    ca: protocol === 'https' ? ca : undefined,
  };
  return Object.freeze(parent);
}

/** The URL with its password replaced, for messages. */
export function redact(text: string): string {
  return text.replace(/^([a-z0-9+.-]+:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}
