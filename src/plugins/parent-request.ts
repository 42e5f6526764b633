import type { Target } from '../core/context.js';
import { isField, type HeaderField, type RequestHead } from '../core/http/head.js';
import type { ParentProxy } from '../core/transport.js';
import { authorityOf, parentAuthorization } from '../transports/parent-connect.js';

/**
 * A plain HTTP request head as an http(s) parent proxy takes it: absolute-form
 * (`GET http://host:port/path`, the authority from Host, which http-forward made match the URL)
 * and the parent's own Proxy-Authorization. Any Proxy-Authorization already there is dropped
 * first: the client's credentials are for this proxy and never go further.
 */
export function parentRequestHead(head: RequestHead, target: Target, parent: ParentProxy): RequestHead {
  const headers: HeaderField[] = [];
  let authority: string | undefined;
  for (const field of head.headers) {
    if (isField(field[0], 'proxy-authorization')) continue;
    if (authority === undefined && isField(field[0], 'host')) authority = field[1];
    headers.push(field);
  }
  const credentials = parentAuthorization(parent);
  if (credentials !== undefined) headers.push(['Proxy-Authorization', credentials]);
  // Already absolute (a chain that left it so) stays; `OPTIONS *` becomes the bare authority (RFC 9112 §3.2.4).
  let url = head.target;
  if (url.charCodeAt(0) === 0x2f /* / */) url = `http://${authority ?? authorityOf(target)}${url}`;
  else if (url === '*') url = `http://${authority ?? authorityOf(target)}`;
  return { method: head.method, target: url, version: head.version, headers };
}
