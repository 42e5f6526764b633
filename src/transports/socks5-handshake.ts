import net from 'node:net';
import type { Target } from '../core/transport.js';
import { ipv6Text, normalizeIpv6 } from './socks5-address.js';
import { failureReply, Socks5Reply } from './socks5-replies.js';

// The three messages a SOCKS5 client sends before its tunnel (RFC 1928 §3–5, RFC 1929 §2),
// parsed from the bytes read so far. Each parser returns whether it needs more bytes, what is
// wrong (with the reply the RFC defines for it, if any), or the message and its length.

/** The result of parsing one message from the bytes read so far. */
export type Step<T> =
  | { readonly kind: 'more' }
  | { readonly kind: 'bad'; readonly why: string; readonly reply?: Buffer }
  | { readonly kind: 'done'; readonly value: T; readonly length: number };

/** The authentication methods of RFC 1928 §3 that proxyline speaks. */
export const Socks5Method = {
  /** X'00': no authentication. */
  NONE: 0x00,
  /** X'02': username/password (RFC 1929). */
  PASSWORD: 0x02,
  /** X'FF': none of the offered methods is acceptable; the client must close. */
  NO_ACCEPTABLE: 0xff,
} as const;

/** The credentials of an RFC 1929 sub-negotiation. */
export interface Socks5Credentials {
  /** UNAME, decoded as UTF-8. */
  readonly user: string;
  /** PASSWD, decoded as UTF-8. */
  readonly password: string;
}

const MORE = { kind: 'more' } as const;
const bad = (why: string, reply?: Buffer): Step<never> => ({ kind: 'bad', why, reply });

/** RFC 1929 failure status: any value but 0 fails; the client must close. */
export const AUTH_FAILED = Buffer.from([0x01, 0x01]);
/** RFC 1929 success status. */
export const AUTH_OK = Buffer.from([0x01, 0x00]);
/** Method selection replies, made once. */
const SELECTED = new Map<number, Buffer>([Socks5Method.NONE, Socks5Method.PASSWORD, Socks5Method.NO_ACCEPTABLE].map((m) => [m, Buffer.from([0x05, m])]));

/** The METHOD selection message for `method`. */
export function methodReply(method: number): Buffer {
  return SELECTED.get(method) ?? Buffer.from([0x05, method]);
}

/** VER NMETHODS METHODS…: the methods offered. A wrong version has no reply defined: the connection just closes. */
export function parseGreeting(bytes: Buffer): Step<readonly number[]> {
  if (bytes.length < 2) return bytes.length === 1 && bytes[0] !== 0x05 ? bad(`version ${bytes[0]}, expected 5`) : MORE;
  if (bytes[0] !== 0x05) return bad(`version ${bytes[0]}, expected 5`);
  const count = bytes[1]!;
  if (count === 0) return bad('no authentication method offered', methodReply(Socks5Method.NO_ACCEPTABLE));
  if (bytes.length < 2 + count) return MORE;
  return { kind: 'done', value: [...bytes.subarray(2, 2 + count)], length: 2 + count };
}

/** VER ULEN UNAME PLEN PASSWD (RFC 1929): anything malformed fails with status 1. */
export function parseCredentials(bytes: Buffer): Step<Socks5Credentials> {
  if (bytes.length >= 1 && bytes[0] !== 0x01) return bad(`sub-negotiation version ${bytes[0]}, expected 1`, AUTH_FAILED);
  if (bytes.length < 2) return MORE;
  const userLength = bytes[1]!;
  if (userLength === 0) return bad('empty user name', AUTH_FAILED);
  if (bytes.length < 3 + userLength) return MORE;
  const passwordLength = bytes[2 + userLength]!;
  const end = 3 + userLength + passwordLength;
  if (bytes.length < end) return MORE;
  const user = bytes.toString('utf8', 2, 2 + userLength);
  const password = bytes.toString('utf8', 3 + userLength, end);
  return { kind: 'done', value: { user, password }, length: end };
}

/** A domain name we put in a request line: letters, digits, dot, hyphen, underscore (nothing that could end a line or a field). */
const DOMAIN = /^[A-Za-z0-9._-]+$/;

/**
 * VER CMD RSV ATYP DST.ADDR DST.PORT: where to CONNECT. BIND, UDP ASSOCIATE and unknown commands
 * fail with 07 once the command is read; an unknown address type with 08; a wrong version or a
 * name that is not a plain host name with 01.
 */
export function parseRequest(bytes: Buffer): Step<Target> {
  if (bytes.length < 4) return bytes.length >= 1 && bytes[0] !== 0x05 ? bad(`version ${bytes[0]}`, failureReply(Socks5Reply.GENERAL_FAILURE)) : MORE;
  if (bytes[0] !== 0x05) return bad(`version ${bytes[0]}`, failureReply(Socks5Reply.GENERAL_FAILURE));
  const command = bytes[1]!;
  if (command !== 0x01) return bad(`command ${command} (only CONNECT is served)`, failureReply(Socks5Reply.COMMAND_NOT_SUPPORTED));
  const type = bytes[3]!;
  let start = 4;
  let end: number;
  if (type === 0x01) end = 8;
  else if (type === 0x04) end = 20;
  else if (type === 0x03) {
    if (bytes.length < 5) return MORE;
    if (bytes[4] === 0) return bad('empty domain name', failureReply(Socks5Reply.GENERAL_FAILURE));
    start = 5;
    end = 5 + bytes[4]!;
  } else return bad(`address type ${type}`, failureReply(Socks5Reply.ADDRESS_TYPE_NOT_SUPPORTED));
  if (bytes.length < end + 2) return MORE;
  const port = bytes.readUInt16BE(end);
  if (port === 0) return bad('port 0', failureReply(Socks5Reply.GENERAL_FAILURE));
  let host: string;
  if (type === 0x01) host = [...bytes.subarray(start, end)].join('.');
  else if (type === 0x04) host = ipv6Text(bytes.subarray(start, end));
  else {
    host = bytes.toString('latin1', start, end);
    // A client may pass an address as a name (curl --socks5-hostname ::1).
    if (net.isIPv6(host)) host = normalizeIpv6(host);
    else if (!DOMAIN.test(host)) return bad('domain name with characters a host name cannot have', failureReply(Socks5Reply.GENERAL_FAILURE));
  }
  return { kind: 'done', value: { host, port }, length: end + 2 };
}

/** The authority a request line names `target` by: IPv6 in brackets. */
export function authorityOf(target: Target): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}
