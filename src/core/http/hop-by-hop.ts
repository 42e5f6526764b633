import { getHeaderTokens, isField, someListElement, spanIsToken, type HeaderField } from './head.js';

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
  const kept: HeaderField[] = [];
  for (let i = 0; i < headers.length; i++) {
    const field = headers[i]!;
    const name = field[0];
    if (!isHopByHop(name) && !(named && named.has(name.toLowerCase()))) kept.push(field);
  }
  return kept;
}

/** Field names the Connection header lists besides the fixed and framing ones, or undefined (the usual case). */
function connectionOptions(headers: readonly HeaderField[]): Set<string> | undefined {
  // Most messages name nothing or only fixed fields (`keep-alive`): checked in place,
  // with no token strings built; the set is made only for a field that names another.
  if (!namesOther(headers)) return undefined;
  let named: Set<string> | undefined;
  for (const token of getHeaderTokens(headers, 'connection')) {
    if (!FRAMING.includes(token) && !HOP_BY_HOP.includes(token)) (named ??= new Set()).add(token);
  }
  return named;
}

/** Whether a Connection field lists a token other than the fixed and framing ones (`close` is other: a field of that name goes too). */
function namesOther(headers: readonly HeaderField[]): boolean {
  return someListElement(headers, 'connection', isUnknown, undefined);
}

/** Tokens a Connection field may list that name no other field to drop (`''`: an empty list element). */
const KNOWN = [...HOP_BY_HOP, ...FRAMING, ''];

function isUnknown(value: string, start: number, end: number): boolean {
  for (const known of KNOWN) if (spanIsToken(value, start, end, known)) return false;
  return true;
}
