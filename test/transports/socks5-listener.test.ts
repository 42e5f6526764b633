// The SOCKS5 listener on real loopback sockets: the socks package and raw bytes as clients, a
// node:http origin behind. Every SOCKS connection runs through the chain as a CONNECT would.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { promisify } from 'node:util';
import test from 'ava';
import bcrypt from 'bcryptjs';
import { SocksClient } from 'socks';
import { container } from 'tsyringe';
import type { Exchange } from '../../src/core/exchange.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import type { PluginSpec } from '../../src/core/registry.js';
import type { SocksOptions } from '../../src/transports/socks5-chain.js';
import { startBlackHole } from '../helpers/blackhole.js';
import { closedPort, connectTo, readAll, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { pollUntil } from '../helpers/wire.js';

const CURL = '/usr/bin/curl';
const run = promisify(execFile);
const CHAIN: PluginSpec[] = ['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer'];
// Cost 4: the cheapest bcrypt, so the suite stays fast.
const ALICE = bcrypt.hashSync('wonderland', 4);
const AUTH_CHAIN: PluginSpec[] = [
  'head-parser',
  'connect-handler',
  'http-forward',
  { name: 'proxy-auth', options: { users: { alice: ALICE } } },
  'upstream-dialer',
];

/** Whether this machine can listen on ::1 (chosen at load time, for the IPv6 test). */
const HAS_IPV6 = await new Promise<boolean>((resolve) => {
  const probe = net.createServer();
  probe.once('error', () => resolve(false));
  probe.listen(0, '::1', () => probe.close(() => resolve(true)));
});

/** A proxy with a SOCKS5 listener on 127.0.0.1:0; `socksPort` is where SOCKS clients connect. */
async function startSocksProxy(plugins: PluginSpec[] = CHAIN, socks: Partial<SocksOptions> = {}, logger: Logger = new SilentLogger()) {
  const services = container.createChildContainer();
  services.registerInstance(Logger, logger);
  const proxy = await startProxy({ plugins, socks: { port: 0, ...socks }, container: services });
  const addresses = proxy.server.addresses();
  return { ...proxy, socksPort: addresses[1]!.port, scheme: addresses[1]!.scheme };
}

/** An origin answering `hello <path>`. */
const helloOrigin = () => startHttpOrigin((request, response) => response.end(`hello ${request.url}`));

/** A SOCKS5 CONNECT with the socks package; resolves with the tunnel socket. */
async function socksConnect(socksPort: number, host: string, port: number, credentials?: { userId: string; password: string }) {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: socksPort, type: 5, ...credentials },
    command: 'connect',
    destination: { host, port },
    timeout: 10_000,
  });
  socket.on('error', () => {});
  return socket;
}

/** One HTTP/1.1 GET through a tunnel socket; resolves with everything the origin sent until it closed. */
async function getThrough(socket: net.Socket, path: string): Promise<string> {
  const all = readAll(socket);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n`);
  return (await all).toString('latin1');
}

/** Sends raw bytes to the SOCKS port (FIN answered with FIN) and resolves with all it answered before closing. */
async function rawSocks(socksPort: number, ...writes: Buffer[]): Promise<Buffer> {
  const socket = await socksSocket(socksPort);
  const all = readAll(socket);
  for (const bytes of writes) socket.write(bytes);
  return all;
}

/** A raw socket to the SOCKS port that answers the proxy's FIN with its own, so a close is seen as one. */
async function socksSocket(socksPort: number, data?: Buffer): Promise<net.Socket> {
  const socket = await connectTo(socksPort, data);
  socket.on('end', () => socket.end());
  return socket;
}

const bytes = (...values: number[]) => Buffer.from(values);
const GREETING = bytes(5, 1, 0);
const ACCEPTED = bytes(5, 0);
const connectRequest = (port: number, command = 1) => bytes(5, command, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff);
const failure = (code: number) => bytes(5, code, 0, 1, 0, 0, 0, 0, 0, 0);

/** A chain plugin that records the exchanges ending on the proxy (the user proxy-auth set, the status). */
function exchangeSpy(): ProxyPlugin & { ended: Exchange[] } {
  const ended: Exchange[] = [];
  return {
    name: 'spy',
    ended,
    onExchangeEnd: (_ctx, exchange) => {
      if (exchange) ended.push(exchange);
    },
  };
}

test('the SOCKS5 listener reports its address with the socks5 scheme', async (t) => {
  const proxy = await startSocksProxy();
  try {
    t.is(proxy.scheme, 'socks5');
    t.not(proxy.socksPort, proxy.port);
    t.is(proxy.server.addresses()[0]!.scheme, undefined, 'the HTTP listener has none');
  } finally {
    await proxy.close();
  }
});

test('CONNECT by IPv4 address and by domain name reaches the origin (socks package)', async (t) => {
  const origin = await helloOrigin();
  const proxy = await startSocksProxy();
  try {
    t.regex(await getThrough(await socksConnect(proxy.socksPort, '127.0.0.1', origin.port), '/ipv4'), /^HTTP\/1\.1 200 OK[\s\S]*hello \/ipv4$/);
    t.regex(await getThrough(await socksConnect(proxy.socksPort, 'localhost', origin.port), '/domain'), /hello \/domain$/);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

(HAS_IPV6 ? test : test.skip)('CONNECT by IPv6 address reaches an origin on ::1', async (t) => {
  const origin = http.createServer((_request, response) => response.end('hello over IPv6'));
  await new Promise<void>((resolve) => origin.listen(0, '::1', resolve));
  const spy = exchangeSpy();
  const proxy = await startSocksProxy([...CHAIN, spy]);
  try {
    const { port } = origin.address() as net.AddressInfo;
    t.regex(await getThrough(await socksConnect(proxy.socksPort, '::1', port), '/'), /hello over IPv6$/);
    await proxy.close();
    t.is(spy.ended[0]?.request.target, `[::1]:${port}`, 'the synthesized CONNECT brackets the IPv6 host');
  } finally {
    await proxy.close();
    origin.closeAllConnections();
    await new Promise((resolve) => origin.close(resolve));
  }
});

test('the success reply names the upstream socket: BND.ADDR:BND.PORT is where the origin sees the proxy come from', async (t) => {
  const seen: number[] = [];
  const origin = await startRawOrigin((socket) => {
    seen.push(socket.remotePort!);
    socket.end('pong');
  });
  const proxy = await startSocksProxy();
  try {
    const answer = await rawSocks(proxy.socksPort, GREETING, connectRequest(origin.port));
    t.deepEqual(answer.subarray(0, 2), ACCEPTED);
    t.deepEqual(answer.subarray(2, 6), bytes(5, 0, 0, 1), 'succeeded, an IPv4 BND.ADDR');
    t.deepEqual(answer.subarray(6, 10), bytes(127, 0, 0, 1));
    t.is(answer.readUInt16BE(10), seen[0]!);
    t.is(answer.subarray(12).toString(), 'pong', 'then the tunnel');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('bytes sent right after the request (greeting, request and payload in one write) go through the tunnel', async (t) => {
  const origin = await helloOrigin();
  const proxy = await startSocksProxy();
  try {
    const request = Buffer.from(`GET /early HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n`);
    const answer = await rawSocks(proxy.socksPort, Buffer.concat([GREETING, connectRequest(origin.port), request]));
    t.deepEqual(answer.subarray(0, 3), bytes(5, 0, 5));
    t.is(answer[3], 0, 'succeeded');
    t.regex(answer.subarray(12).toString('latin1'), /^HTTP\/1\.1 200 OK[\s\S]*hello \/early$/);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('username/password (RFC 1929) checked by proxy-auth: the right password tunnels and sets exchange.user', async (t) => {
  const origin = await helloOrigin();
  const spy = exchangeSpy();
  const proxy = await startSocksProxy([...AUTH_CHAIN, spy]);
  try {
    const socket = await socksConnect(proxy.socksPort, '127.0.0.1', origin.port, { userId: 'alice', password: 'wonderland' });
    t.regex(await getThrough(socket, '/auth'), /hello \/auth$/);
    await proxy.close();
    t.is(spy.ended.length, 1);
    t.is(spy.ended[0]!.user, 'alice');
    t.is(spy.ended[0]!.response?.status, 200);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('username/password: a wrong password gets a non-zero status and the connection closes', async (t) => {
  const proxy = await startSocksProxy(AUTH_CHAIN);
  try {
    await t.throwsAsync(socksConnect(proxy.socksPort, '127.0.0.1', 80, { userId: 'alice', password: 'wrong' }), { message: /Authentication failed/ });
    await t.throwsAsync(socksConnect(proxy.socksPort, '127.0.0.1', 80, { userId: 'mallory', password: 'wonderland' }), { message: /Authentication failed/ });
    const user = Buffer.from('alice');
    const password = Buffer.from('nope');
    const answer = await rawSocks(proxy.socksPort, bytes(5, 1, 2), Buffer.concat([bytes(1, user.length), user, bytes(password.length), password]));
    t.deepEqual(answer.subarray(0, 2), bytes(5, 2), 'username/password chosen');
    t.is(answer.length, 4, 'the status, then the close');
    t.is(answer[2], 1);
    t.not(answer[3], 0);
    t.is(proxy.server.stats.socksHandshakeErrors, 3);
  } finally {
    await proxy.close();
  }
});

test("with proxy-auth in the chain no-auth is not offered: a client offering only no-auth gets X'FF' and a close", async (t) => {
  const proxy = await startSocksProxy(AUTH_CHAIN);
  try {
    await t.throwsAsync(socksConnect(proxy.socksPort, '127.0.0.1', 80), { message: /no accepted authentication type/ });
    t.deepEqual(await rawSocks(proxy.socksPort, GREETING), bytes(5, 0xff));
  } finally {
    await proxy.close();
  }
});

test('destination-policy refusal → reply 02 (not allowed), then the connection closes', async (t) => {
  const origin = await helloOrigin();
  // connectPorts defaults to [443]: a CONNECT to the origin's port is refused 403.
  const proxy = await startSocksProxy(['head-parser', 'connect-handler', 'http-forward', 'destination-policy', 'upstream-dialer']);
  try {
    await t.throwsAsync(socksConnect(proxy.socksPort, '127.0.0.1', origin.port), { message: /NotAllowed/ });
    t.deepEqual(await rawSocks(proxy.socksPort, GREETING, connectRequest(origin.port)), Buffer.concat([ACCEPTED, failure(2)]), 'the reply alone, no HTTP body');
    t.is(origin.connections, 0, 'nothing dialled');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('rate-limit refusal (429) → reply 02', async (t) => {
  const origin = await helloOrigin();
  const limited: PluginSpec[] = [
    'head-parser',
    'connect-handler',
    'http-forward',
    { name: 'rate-limit', options: { requestsPerSecond: 0.001, burst: 1 } },
    'upstream-dialer',
  ];
  const proxy = await startSocksProxy(limited);
  try {
    (await socksConnect(proxy.socksPort, '127.0.0.1', origin.port)).destroy();
    await t.throwsAsync(socksConnect(proxy.socksPort, '127.0.0.1', origin.port), { message: /NotAllowed/ });
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('connection refused upstream → reply 05, then the connection closes', async (t) => {
  const proxy = await startSocksProxy();
  try {
    const port = await closedPort();
    await t.throwsAsync(socksConnect(proxy.socksPort, '127.0.0.1', port), { message: /ConnectionRefused/ });
    t.deepEqual(await rawSocks(proxy.socksPort, GREETING, connectRequest(port)), Buffer.concat([ACCEPTED, failure(5)]));
  } finally {
    await proxy.close();
  }
});

test('a name that does not resolve → reply 04 (host unreachable)', async (t) => {
  const proxy = await startSocksProxy();
  try {
    await t.throwsAsync(socksConnect(proxy.socksPort, 'nonexistent.invalid', 80), { message: /HostUnreachable/ });
  } finally {
    await proxy.close();
  }
});

test('a connect timeout (a loopback port whose accept queue is full) → reply 06 (TTL expired)', async (t) => {
  const hole = await startBlackHole();
  const proxy = await startSocksProxy(['head-parser', 'connect-handler', 'http-forward', { name: 'upstream-dialer', options: { connectTimeoutMs: 200 } }]);
  try {
    await t.throwsAsync(socksConnect(proxy.socksPort, '127.0.0.1', hole.port), { message: /TTLExpired/ });
  } finally {
    await proxy.close();
    await hole.close();
  }
});

test("a faults abort answers in the origin's place: its status maps to the reply (504 → 06, 503 → 01); a drop closes with none", async (t) => {
  const origin = await helloOrigin();
  const faults = (fault: Record<string, unknown>): PluginSpec[] => [
    'head-parser',
    'connect-handler',
    'http-forward',
    { name: 'faults', options: { seed: 1, faults: [{ name: 'no', ...fault }] } },
    'upstream-dialer',
  ];
  const timeout = await startSocksProxy(faults({ type: 'abort', status: 504 }));
  const unavailable = await startSocksProxy(faults({ type: 'abort', status: 503 }));
  const dropped = await startSocksProxy(faults({ type: 'drop' }));
  try {
    t.deepEqual(await rawSocks(timeout.socksPort, GREETING, connectRequest(origin.port)), Buffer.concat([ACCEPTED, failure(6)]));
    t.deepEqual(await rawSocks(unavailable.socksPort, GREETING, connectRequest(origin.port)), Buffer.concat([ACCEPTED, failure(1)]));
    t.deepEqual(await rawSocks(dropped.socksPort, GREETING, connectRequest(origin.port)), ACCEPTED, 'closed without a reply');
    t.is(origin.connections, 0);
  } finally {
    await timeout.close();
    await unavailable.close();
    await dropped.close();
    await origin.close();
  }
});

test('BIND and UDP ASSOCIATE → reply 07; an unknown address type → 08; each then closed', async (t) => {
  const proxy = await startSocksProxy();
  try {
    t.deepEqual(await rawSocks(proxy.socksPort, GREETING, connectRequest(80, 2)), Buffer.concat([ACCEPTED, failure(7)]));
    t.deepEqual(await rawSocks(proxy.socksPort, GREETING, connectRequest(80, 3)), Buffer.concat([ACCEPTED, failure(7)]));
    t.deepEqual(await rawSocks(proxy.socksPort, GREETING, bytes(5, 1, 0, 9, 1, 2, 3, 4, 0, 80)), Buffer.concat([ACCEPTED, failure(8)]));
    // createConnection serves CONNECT only; a client object sends BIND.
    const bind = new SocksClient({
      proxy: { host: '127.0.0.1', port: proxy.socksPort, type: 5 },
      command: 'bind',
      destination: { host: '0.0.0.0', port: 0 },
      timeout: 10_000,
    });
    const refused = new Promise<Error>((resolve) => bind.once('error', resolve));
    bind.connect();
    t.regex((await refused).message, /CommandNotSupported/);
    t.is(proxy.server.stats.socksHandshakeErrors, 4);
  } finally {
    await proxy.close();
  }
});

test('malformed greetings and requests: closed after the reply RFC 1928 defines, or at once when it defines none', async (t) => {
  const proxy = await startSocksProxy();
  try {
    t.deepEqual(await rawSocks(proxy.socksPort, bytes(4, 1, 0)), bytes(), 'SOCKS4 greeting: no reply');
    t.deepEqual(await rawSocks(proxy.socksPort, Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n')), bytes(), 'HTTP on the SOCKS port: no reply');
    t.deepEqual(await rawSocks(proxy.socksPort, bytes(5, 0)), bytes(5, 0xff), 'zero methods: no acceptable method');
    t.deepEqual(await rawSocks(proxy.socksPort, bytes(5, 1, 2)), bytes(5, 0xff), 'only username/password, no proxy-auth: no acceptable method');
    t.deepEqual(await rawSocks(proxy.socksPort, GREETING, bytes(4, 1, 0, 1, 127, 0, 0, 1, 0, 80)), Buffer.concat([ACCEPTED, failure(1)]), 'request version 4');
    const badName = Buffer.concat([bytes(5, 1, 0, 3, 7), Buffer.from('a b\r\nc:'), bytes(0, 80)]);
    t.deepEqual(await rawSocks(proxy.socksPort, GREETING, badName), Buffer.concat([ACCEPTED, failure(1)]), 'a name no host can have');
    // Truncated: the client half-closes in the middle of a message.
    const truncated = await socksSocket(proxy.socksPort);
    const all = readAll(truncated);
    truncated.end(bytes(5, 2, 0));
    t.deepEqual(await all, bytes(), 'greeting cut short: closed without a reply');
    t.is(proxy.server.stats.socksHandshakeErrors, 7);
    t.is(proxy.server.connections, 0, 'none of them became a connection of the core');
  } finally {
    await proxy.close();
  }
});

test('a stalled handshake is closed after the handshake timeout, and counted', async (t) => {
  const proxy = await startSocksProxy(CHAIN, { handshakeTimeoutMs: 150 });
  try {
    const stalled = await socksSocket(proxy.socksPort, GREETING);
    const answer = await readAll(stalled);
    t.deepEqual(answer, ACCEPTED, 'the method was chosen; the request never came');
    t.is(proxy.server.stats.socksHandshakeErrors, 1);
  } finally {
    await proxy.close();
  }
});

test("the handshake timeout defaults to head-parser's headersTimeoutMs", async (t) => {
  const proxy = await startSocksProxy([{ name: 'head-parser', options: { headersTimeoutMs: 150 } }, 'connect-handler', 'http-forward', 'upstream-dialer']);
  try {
    const silent = await socksSocket(proxy.socksPort);
    t.deepEqual(await readAll(silent), bytes(), 'nothing sent, nothing answered: closed');
    t.is(proxy.server.stats.socksHandshakeErrors, 1);
  } finally {
    await proxy.close();
  }
});

test('SOCKS and HTTP connections share maxConnections: a handshake over the cap is closed at hand-over', async (t) => {
  const origin = await helloOrigin();
  const services = container.createChildContainer();
  services.registerInstance(Logger, new SilentLogger());
  const proxy = await startProxy({ plugins: CHAIN, socks: { port: 0 }, container: services, maxConnections: 1 });
  const held = await connectTo(proxy.port);
  try {
    t.true(await pollUntil(() => proxy.server.connections === 1, 120));
    const answer = await rawSocks(proxy.server.addresses()[1]!.port, GREETING, connectRequest(origin.port));
    t.deepEqual(answer, ACCEPTED, 'the method reply, then closed: no connection was made');
    t.is(proxy.server.stats.connectionsRefused, 1);
    t.is(origin.connections, 0);
  } finally {
    held.destroy();
    await proxy.close();
    await origin.close();
  }
});

test('closing the proxy closes handshakes in progress', async (t) => {
  const proxy = await startSocksProxy();
  const pending = await socksSocket(proxy.socksPort, bytes(5, 2));
  try {
    const all = readAll(pending);
    await proxy.close();
    t.deepEqual(await all, bytes());
    t.true(pending.destroyed);
  } finally {
    pending.destroy();
    await proxy.close();
  }
});

test('the logger plugin records the SOCKS exchange as a CONNECT line', async (t) => {
  const origin = await helloOrigin();
  const lines: string[] = [];
  const recorder: Logger = { info: (message) => lines.push(message), warn: () => {}, error: () => {} };
  const proxy = await startSocksProxy(
    ['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer', 'byte-counter', { name: 'logger', options: { format: 'text' } }],
    {},
    recorder,
  );
  try {
    t.regex(await getThrough(await socksConnect(proxy.socksPort, 'localhost', origin.port), '/logged'), /hello \/logged$/);
    await proxy.close();
    t.is(lines.length, 1);
    t.regex(lines[0]!, new RegExp(`^#\\d+\\.1 127\\.0\\.0\\.1:\\d+ CONNECT localhost:${origin.port} 200 in=\\d+ out=\\d+ `));
    t.notRegex(lines[0]!, /in=0 /, 'the tunnel bytes were counted');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

const withCurl = existsSync(CURL) ? test : test.skip;

withCurl('curl --socks5-hostname (domain) and --socks5 (IPv4) fetch through the listener', async (t) => {
  const origin = await helloOrigin();
  const proxy = await startSocksProxy();
  try {
    const viaName = await run(CURL, ['-sS', '-m', '10', '--socks5-hostname', `127.0.0.1:${proxy.socksPort}`, `http://localhost:${origin.port}/name`]);
    t.is(viaName.stdout, 'hello /name');
    const viaAddress = await run(CURL, ['-sS', '-m', '10', '--socks5', `127.0.0.1:${proxy.socksPort}`, `http://127.0.0.1:${origin.port}/address`]);
    t.is(viaAddress.stdout, 'hello /address');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

withCurl('curl with credentials (--proxy-user, socks5h://user:pass@) against proxy-auth; a wrong password fails', async (t) => {
  const origin = await helloOrigin();
  const proxy = await startSocksProxy(AUTH_CHAIN);
  try {
    const flag = await run(CURL, [
      '-sS',
      '-m',
      '10',
      '--socks5-hostname',
      `127.0.0.1:${proxy.socksPort}`,
      '--proxy-user',
      'alice:wonderland',
      `http://localhost:${origin.port}/a`,
    ]);
    t.is(flag.stdout, 'hello /a');
    const inUrl = await run(CURL, ['-sS', '-m', '10', '-x', `socks5h://alice:wonderland@127.0.0.1:${proxy.socksPort}`, `http://localhost:${origin.port}/b`]);
    t.is(inUrl.stdout, 'hello /b');
    const wrong = await run(CURL, ['-sS', '-m', '10', '-x', `socks5h://alice:nope@127.0.0.1:${proxy.socksPort}`, `http://localhost:${origin.port}/c`]).catch(
      (error: { code: number; stderr: string }) => error,
    );
    t.not((wrong as { code?: number }).code ?? 0, 0, 'curl failed');
    t.is(origin.connections, 2);
  } finally {
    await proxy.close();
    await origin.close();
  }
});
