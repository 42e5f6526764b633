import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClientDialect, DialectExchange } from '../core/dialect.js';
import type { ProxyError } from '../core/errors.js';
import type { ResponseHead } from '../core/http/response-framing.js';
import { ipv6Bytes } from './socks5-address.js';

/** The reply codes of RFC 1928 §6 (the REP field). */
export const Socks5Reply = {
  /** The upstream is connected; the tunnel starts. */
  SUCCEEDED: 0x00,
  /** Any failure no other code names. */
  GENERAL_FAILURE: 0x01,
  /** A policy refused it (destination-policy, a rate limit, proxy-auth). */
  NOT_ALLOWED: 0x02,
  /** ENETUNREACH. */
  NETWORK_UNREACHABLE: 0x03,
  /** EHOSTUNREACH, or the name does not resolve. */
  HOST_UNREACHABLE: 0x04,
  /** ECONNREFUSED. */
  CONNECTION_REFUSED: 0x05,
  /** The connect (or the answer) timed out. */
  TTL_EXPIRED: 0x06,
  /** BIND, UDP ASSOCIATE and unknown commands: only CONNECT is served. */
  COMMAND_NOT_SUPPORTED: 0x07,
  /** An ATYP other than IPv4, domain name or IPv6. */
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

/** The errno codes (in a ProxyError's `cause`) that have a reply code of their own. */
const BY_ERRNO: Readonly<Record<string, number>> = {
  ECONNREFUSED: Socks5Reply.CONNECTION_REFUSED,
  EHOSTUNREACH: Socks5Reply.HOST_UNREACHABLE,
  ENOTFOUND: Socks5Reply.HOST_UNREACHABLE,
  EAI_AGAIN: Socks5Reply.HOST_UNREACHABLE,
  EAI_NONAME: Socks5Reply.HOST_UNREACHABLE,
  ENETUNREACH: Socks5Reply.NETWORK_UNREACHABLE,
  ETIMEDOUT: Socks5Reply.TTL_EXPIRED,
};

/** Otherwise the HTTP status of the answer decides: refusals are "not allowed", timeouts "TTL expired". */
const BY_STATUS: Readonly<Record<number, number>> = {
  403: Socks5Reply.NOT_ALLOWED,
  407: Socks5Reply.NOT_ALLOWED,
  429: Socks5Reply.NOT_ALLOWED,
  504: Socks5Reply.TTL_EXPIRED,
};

/** The errno code somewhere down `error`'s cause chain (a few links at most), if any. */
function errnoOf(error: ProxyError | undefined): string | undefined {
  let cause: unknown = error?.cause;
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    const { code } = cause as NodeJS.ErrnoException;
    if (typeof code === 'string' && !code.startsWith('ERR_')) return code;
    cause = cause.cause;
  }
  return undefined;
}

/**
 * The reply code for the answer to a SOCKS5 CONNECT: success for an established tunnel (a 2xx to
 * a CONNECT), else by the errno of the failure's cause, else by the answer's HTTP status,
 * else general failure.
 */
export function replyCode(status: number, tunnel: boolean, error: ProxyError | undefined): number {
  if (tunnel && status >= 200 && status < 300 && !error) return Socks5Reply.SUCCEEDED;
  const errno = errnoOf(error);
  return (errno !== undefined ? BY_ERRNO[errno] : undefined) ?? BY_STATUS[status] ?? Socks5Reply.GENERAL_FAILURE;
}

/** A reply with an IPv4 BND.ADDR of 0.0.0.0 and BND.PORT 0 (what failures carry). */
function unboundReply(code: number): Buffer {
  return Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}

/** The failure replies, made once: answering a refusal allocates nothing. */
const FAILURES: readonly Buffer[] = Array.from({ length: 9 }, (_, code) => unboundReply(code));

/** The reply for `code` with BND.ADDR 0.0.0.0:0. */
export function failureReply(code: number): Buffer {
  return FAILURES[code] ?? unboundReply(code);
}

/** A success reply naming the upstream socket's local address (0.0.0.0:0 when it has none, e.g. not a TCP socket). */
export function successReply(upstream: Duplex | undefined): Buffer {
  const { localAddress, localPort } = (upstream ?? {}) as Partial<net.Socket>;
  if (!localAddress || !localPort) return FAILURES[Socks5Reply.SUCCEEDED]!;
  const address = localAddress.startsWith('::ffff:') && net.isIPv4(localAddress.slice(7)) ? localAddress.slice(7) : localAddress;
  if (net.isIPv4(address)) {
    const reply = Buffer.from([0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    address.split('.').forEach((octet, i) => (reply[4 + i] = Number(octet)));
    reply.writeUInt16BE(localPort, 8);
    return reply;
  }
  if (!net.isIPv6(address)) return FAILURES[Socks5Reply.SUCCEEDED]!;
  const reply = Buffer.alloc(22);
  reply.set([0x05, 0x00, 0x00, 0x04]);
  ipv6Bytes(address).copy(reply, 4);
  reply.writeUInt16BE(localPort, 20);
  return reply;
}

/**
 * The dialect of a SOCKS5 listener's connections: the answer to the synthesized CONNECT becomes
 * the RFC 1928 reply — success with the upstream socket's local address, or the failure code
 * (after which the core closes the connection, the synthesized request having asked it to).
 * Stateless: one instance serves every connection.
 */
export class Socks5Dialect implements ClientDialect {
  reply(head: ResponseHead, exchange: DialectExchange | undefined, error: ProxyError | undefined): Buffer {
    const code = replyCode(head.status, exchange?.isConnect === true, error);
    return code === Socks5Reply.SUCCEEDED ? successReply(exchange!.upstream) : failureReply(code);
  }
}
