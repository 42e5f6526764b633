import { getHeaderTokens, isField, type HeaderField } from './head.js';

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1), plus legacy ones. */
const HOP_BY_HOP = ['connection', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'te', 'trailer', 'upgrade'];

/**
 * Framing fields stay even when Connection names them: the body is relayed as it was framed,
 * so dropping them would let a client desynchronise proxy and origin (request smuggling).
 */
const FRAMING = ['content-length', 'transfer-encoding', 'host'];

/** Whether a field name is one of the fixed hop-by-hop fields (case-insensitive). */
function isHopByHop(name: string): boolean {
  for (const hop of HOP_BY_HOP) if (isField(name, hop)) return true;
  return false;
}

/** Drops hop-by-hop fields and those the Connection header names, order and case kept. */
export function withoutHopByHop(headers: readonly HeaderField[]): HeaderField[] {
  const named = connectionOptions(headers);
  return headers.filter(([name]) => !isHopByHop(name) && !(named && named.has(name.toLowerCase())));
}

/** Field names the Connection header lists besides the fixed and framing ones, or undefined (the usual case). */
function connectionOptions(headers: readonly HeaderField[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (const token of getHeaderTokens(headers, 'connection')) {
    if (!FRAMING.includes(token) && !HOP_BY_HOP.includes(token)) (named ??= new Set()).add(token);
  }
  return named;
}
