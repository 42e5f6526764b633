import { getHeaderTokens, type HeaderField } from './head.js';

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1), plus legacy ones. */
const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'te', 'trailer', 'upgrade']);

/**
 * Framing fields stay even when Connection names them: the body is relayed as it was framed,
 * so dropping them would let a client desynchronise proxy and origin (request smuggling).
 */
const FRAMING = ['content-length', 'transfer-encoding', 'host'];

/** Drops hop-by-hop fields and those the Connection header names, order and case kept. */
export function withoutHopByHop(headers: readonly HeaderField[]): HeaderField[] {
  const named = new Set(getHeaderTokens(headers, 'connection'));
  for (const name of FRAMING) named.delete(name);
  return headers.filter(([name]) => {
    const lower = name.toLowerCase();
    return !HOP_BY_HOP.has(lower) && !named.has(lower);
  });
}
