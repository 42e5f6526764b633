// The SOCKS5 message parsers, the reply mapping and the synthesized CONNECT, on bytes alone.
import net from 'node:net';
import test from 'ava';
import { ProxyError } from '../../src/core/errors.js';
import { ipv6Bytes, ipv6Text, normalizeIpv6 } from '../../src/transports/socks5-address.js';
import { parseCredentials, parseGreeting, parseRequest, type Step } from '../../src/transports/socks5-handshake.js';
import { synthesizedConnect } from '../../src/transports/socks5-listener.js';
import { failureReply, replyCode, Socks5Reply, successReply } from '../../src/transports/socks5-replies.js';

const bytes = (...values: number[]) => Buffer.from(values);
const replyOf = <T>(step: Step<T>) => (step.kind === 'bad' ? step.reply : undefined);

test('greeting: the methods offered once complete; more bytes wanted before', (t) => {
  t.deepEqual(parseGreeting(bytes(5)), { kind: 'more' });
  t.deepEqual(parseGreeting(bytes(5, 2, 0)), { kind: 'more' });
  t.deepEqual(parseGreeting(bytes(5, 2, 0, 2, 9)), { kind: 'done', value: [0, 2], length: 4 });
});

test("greeting: a wrong version closes without a reply; zero methods gets X'FF'", (t) => {
  const wrong = parseGreeting(bytes(4, 1, 0));
  t.is(wrong.kind, 'bad');
  t.is(replyOf(wrong), undefined);
  t.is(parseGreeting(bytes(0x47)).kind, 'bad', 'garbage is refused from its first byte');
  t.deepEqual(replyOf(parseGreeting(bytes(5, 0))), bytes(5, 0xff));
});

test('credentials (RFC 1929): user and password; a wrong version or empty user fails with status 1', (t) => {
  const message = Buffer.concat([bytes(1, 5), Buffer.from('alice'), bytes(3), Buffer.from('pw!'), bytes(7)]);
  t.deepEqual(parseCredentials(message), { kind: 'done', value: { user: 'alice', password: 'pw!' }, length: 11 });
  t.deepEqual(parseCredentials(message.subarray(0, 8)), { kind: 'more' });
  t.deepEqual(replyOf(parseCredentials(bytes(5, 1, 0x61, 0))), bytes(1, 1));
  t.deepEqual(replyOf(parseCredentials(bytes(1, 0, 0))), bytes(1, 1));
});

test('request: IPv4, domain and IPv6 addresses give the target', (t) => {
  t.deepEqual(parseRequest(bytes(5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90)), { kind: 'done', value: { host: '127.0.0.1', port: 8080 }, length: 10 });
  const domain = Buffer.concat([bytes(5, 1, 0, 3, 9), Buffer.from('localhost'), bytes(0, 80)]);
  t.deepEqual(parseRequest(domain), { kind: 'done', value: { host: 'localhost', port: 80 }, length: 16 });
  t.deepEqual(parseRequest(domain.subarray(0, 10)), { kind: 'more' });
  const v6 = Buffer.concat([bytes(5, 1, 0, 4), ipv6Bytes('::1'), bytes(1, 0)]);
  t.deepEqual(parseRequest(v6), { kind: 'done', value: { host: '::1', port: 256 }, length: 22 });
  const named = Buffer.concat([bytes(5, 1, 0, 3, 15), Buffer.from('0:0:0:0:0:0:0:1'), bytes(0, 80)]);
  t.deepEqual(parseRequest(named), { kind: 'done', value: { host: '::1', port: 80 }, length: 22 }, 'an address given as a name is normalized');
});

test('request: BIND and UDP ASSOCIATE → 07, unknown address type → 08, wrong version, bad names and port 0 → 01', (t) => {
  t.deepEqual(replyOf(parseRequest(bytes(5, 2, 0, 1))), failureReply(Socks5Reply.COMMAND_NOT_SUPPORTED));
  t.deepEqual(replyOf(parseRequest(bytes(5, 3, 0, 1))), failureReply(Socks5Reply.COMMAND_NOT_SUPPORTED));
  t.deepEqual(replyOf(parseRequest(bytes(5, 1, 0, 9))), failureReply(Socks5Reply.ADDRESS_TYPE_NOT_SUPPORTED));
  t.deepEqual(replyOf(parseRequest(bytes(4))), failureReply(Socks5Reply.GENERAL_FAILURE));
  t.deepEqual(replyOf(parseRequest(bytes(5, 1, 0, 3, 0))), failureReply(Socks5Reply.GENERAL_FAILURE));
  const injection = Buffer.concat([bytes(5, 1, 0, 3, 12), Buffer.from('a\r\nX-Evil: 1'), bytes(0, 80)]);
  t.deepEqual(replyOf(parseRequest(injection)), failureReply(Socks5Reply.GENERAL_FAILURE), 'nothing that could end a line reaches the synthesized head');
  t.deepEqual(replyOf(parseRequest(bytes(5, 1, 0, 1, 127, 0, 0, 1, 0, 0))), failureReply(Socks5Reply.GENERAL_FAILURE));
  t.deepEqual(failureReply(7), bytes(5, 7, 0, 1, 0, 0, 0, 0, 0, 0), 'failures carry 0.0.0.0:0');
});

test('reply codes: by the errno of the failure, else by its status; success only for a CONNECT 2xx', (t) => {
  const dialError = (code: string) => new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', code, { cause: Object.assign(new Error(code), { code }) });
  t.is(replyCode(200, true, undefined), Socks5Reply.SUCCEEDED);
  t.is(replyCode(200, false, undefined), Socks5Reply.GENERAL_FAILURE);
  t.is(replyCode(502, true, dialError('ECONNREFUSED')), Socks5Reply.CONNECTION_REFUSED);
  t.is(replyCode(502, true, dialError('ENOTFOUND')), Socks5Reply.HOST_UNREACHABLE);
  t.is(replyCode(502, true, dialError('EAI_AGAIN')), Socks5Reply.HOST_UNREACHABLE);
  t.is(replyCode(502, true, dialError('EHOSTUNREACH')), Socks5Reply.HOST_UNREACHABLE);
  t.is(replyCode(502, true, dialError('ENETUNREACH')), Socks5Reply.NETWORK_UNREACHABLE);
  t.is(replyCode(502, true, dialError('ECONNRESET')), Socks5Reply.GENERAL_FAILURE);
  t.is(replyCode(504, true, new ProxyError('ERR_PROXY_UPSTREAM_TIMEOUT', 'connect timeout')), Socks5Reply.TTL_EXPIRED);
  t.is(replyCode(403, true, new ProxyError('ERR_PROXY_FORBIDDEN', 'no')), Socks5Reply.NOT_ALLOWED);
  t.is(replyCode(407, true, new ProxyError('ERR_PROXY_AUTH_REQUIRED', 'no')), Socks5Reply.NOT_ALLOWED);
  t.is(replyCode(429, true, new ProxyError('ERR_PROXY_RATE_LIMITED', 'no')), Socks5Reply.NOT_ALLOWED);
  t.is(replyCode(500, true, new ProxyError('ERR_PROXY_INTERNAL', 'bug')), Socks5Reply.GENERAL_FAILURE);
  t.is(replyCode(503, true, undefined), Socks5Reply.GENERAL_FAILURE, "a plugin's own non-2xx answer");
});

test("success replies name the upstream socket's local address (IPv4, IPv6, IPv4-mapped), else 0.0.0.0:0", (t) => {
  const socket = (localAddress: string, localPort: number) => ({ localAddress, localPort }) as unknown as net.Socket;
  t.deepEqual(successReply(socket('127.0.0.1', 0x1234)), bytes(5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34));
  t.deepEqual(successReply(socket('::ffff:10.1.2.3', 80)), bytes(5, 0, 0, 1, 10, 1, 2, 3, 0, 80));
  t.deepEqual(successReply(socket('::1', 80)), Buffer.concat([bytes(5, 0, 0, 4), ipv6Bytes('::1'), bytes(0, 80)]));
  t.deepEqual(successReply(undefined), bytes(5, 0, 0, 1, 0, 0, 0, 0, 0, 0));
});

test('IPv6 text and bytes round-trip, compressed', (t) => {
  for (const address of ['::1', '::', 'fe80::1:2', '2001:db8::8:800:200c:417a', '1:2:3:4:5:6:7:8', '::ffff:1.2.3.4']) {
    t.is(ipv6Text(ipv6Bytes(address)), normalizeIpv6(address), address);
    t.true(net.isIPv6(ipv6Text(ipv6Bytes(address))));
  }
  t.deepEqual([...ipv6Bytes('::1')], [...Array<number>(15).fill(0), 1]);
  t.is(normalizeIpv6('0:0:0:0:0:0:0:1'), '::1');
});

test('the synthesized CONNECT: bracketed IPv6 authority, Connection: close, credentials as Basic', (t) => {
  t.is(synthesizedConnect({ host: 'localhost', port: 80 }), 'CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\nConnection: close\r\n\r\n');
  t.is(
    synthesizedConnect({ host: '::1', port: 443 }, { user: 'alice', password: 'pw' }),
    `CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nConnection: close\r\nProxy-Authorization: Basic ${Buffer.from('alice:pw').toString('base64')}\r\n\r\n`,
  );
});
