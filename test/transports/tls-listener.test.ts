import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import test from 'ava';
import { ProxyError } from '../../src/core/errors.js';
import type { LogFields, Logger } from '../../src/core/logger.js';
import { createStats } from '../../src/core/stats.js';
import type { PeerAddress } from '../../src/core/transport.js';
import { checkTlsCredentials } from '../../src/transports/tls-credentials.js';
import { TlsListener } from '../../src/transports/tls-listener.js';
import { connectTo, TLS } from '../helpers/net.js';
import { closed, collect, pollUntil } from '../helpers/wire.js';

/** Keeps every warning. */
class Warnings implements Logger {
  readonly records: { message: string; fields?: LogFields }[] = [];
  info(): void {}
  warn(message: string, fields?: LogFields): void {
    this.records.push({ message, fields });
  }
  error(): void {}
}

/** A TLS listener on 127.0.0.1:0 with its own counters and warnings; `accepted` holds what it handed over. */
async function startListener(handshakeTimeoutMs = 60_000) {
  const logger = new Warnings();
  const stats = createStats();
  const listener = new TlsListener('127.0.0.1', 0, { ...TLS, handshakeTimeoutMs }, { logger, stats });
  const accepted: { socket: Duplex; peer: PeerAddress; flowing: boolean | null }[] = [];
  const { port } = await listener.listen((socket, peer) => {
    socket.on('error', () => {});
    accepted.push({ socket, peer, flowing: (socket as tls.TLSSocket).readableFlowing });
  });
  return {
    port,
    logger,
    stats,
    accepted,
    close: async () => {
      for (const { socket } of accepted) socket.destroy();
      await listener.close();
    },
  };
}

/** A TLS client of the listener that trusts the test certificate. */
async function tlsClient(port: number): Promise<tls.TLSSocket> {
  // tls.connect passes allowHalfOpen to its socket; @types/node leaves it out of ConnectionOptions.
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: TLS.cert, allowHalfOpen: true } as tls.ConnectionOptions);
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  return socket;
}

/** The first bytes of a real ClientHello: a TLS record header that promises more than ever comes. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

/** A whole ClientHello from Node's TLS client, caught by a plain TCP server: sent raw, the handshake starts and then waits for us. */
async function clientHello(): Promise<Buffer> {
  const catcher = net.createServer();
  catcher.listen(0, '127.0.0.1');
  await once(catcher, 'listening');
  const client = tls.connect({ host: '127.0.0.1', port: (catcher.address() as net.AddressInfo).port, servername: 'localhost' });
  client.on('error', () => {});
  try {
    const [socket] = (await once(catcher, 'connection')) as [net.Socket];
    socket.on('error', () => {});
    const [hello] = (await once(socket, 'data')) as [Buffer];
    socket.destroy();
    return hello;
  } finally {
    client.destroy();
    catcher.close();
  }
}

/** A raw client that sends `data` (if any) and is closed by the listener: `ended` settles on its end or close, listened for from the start. */
async function rawClient(port: number, data?: Buffer | string): Promise<{ socket: net.Socket; ended: Promise<unknown> }> {
  const socket = await connectTo(port);
  const ended = collect(socket);
  if (data !== undefined) socket.write(data);
  return { socket, ended };
}

/** Sends a whole ClientHello and waits for the server's first answer: the handshake is under way, and stays so. */
async function midHandshake(port: number, hello: Buffer): Promise<{ socket: net.Socket; ended: Promise<unknown> }> {
  const client = await rawClient(port);
  const answered = once(client.socket, 'data');
  client.socket.write(hello);
  await answered;
  return client;
}

test('a TLS client is handed over secure and paused, with its TCP address as the peer, and half-close works both ways', async (t) => {
  const listener = await startListener();
  let client: tls.TLSSocket | undefined;
  try {
    client = await tlsClient(listener.port);
    t.true(await pollUntil(() => listener.accepted.length === 1, 200));
    const [{ socket, peer, flowing }] = listener.accepted as [(typeof listener.accepted)[0]];
    t.true(socket instanceof tls.TLSSocket);
    t.is(flowing, false, 'paused: nothing is read before the pipeline asks');
    t.deepEqual(peer, { address: '127.0.0.1', port: client.localPort });
    t.is((socket as tls.TLSSocket).alpnProtocol, false, 'the client offered no ALPN: none chosen');

    // The client sends and half-closes; the server still answers, then half-closes too.
    const server = socket as tls.TLSSocket;
    const received: Buffer[] = [];
    server.on('data', (chunk: Buffer) => received.push(chunk));
    const serverEnded = once(server, 'end');
    server.resume();
    const answer = collect(client);
    client.end('ping');
    await serverEnded;
    t.is(Buffer.concat(received).toString(), 'ping');
    t.true(server.writable, 'allowHalfOpen: still writable after the client ended');
    server.end('pong');
    const { text, how } = await answer;
    t.is(text, 'pong');
    t.is(how, 'end');
    await closed(client);
    await closed(server);
    t.is(listener.stats.tlsHandshakeErrors, 0);
  } finally {
    client?.destroy();
    await listener.close();
  }
});

test("resetAndDestroy on a handed-over socket resets its TCP connection (a bare TLSSocket's would throw)", async (t) => {
  const listener = await startListener();
  let client: tls.TLSSocket | undefined;
  try {
    client = await tlsClient(listener.port);
    const failed = once(client, 'error');
    t.true(await pollUntil(() => listener.accepted.length === 1, 200));
    const socket = listener.accepted[0]!.socket as tls.TLSSocket;
    t.notThrows(() => socket.resetAndDestroy());
    const [error] = (await failed) as [NodeJS.ErrnoException];
    t.is(error.code, 'ECONNRESET');
    await closed(socket);
  } finally {
    client?.destroy();
    await listener.close();
  }
});

test('bytes that are not TLS are counted, warned about at most once a second, and closed; the listener keeps serving', async (t) => {
  const listener = await startListener();
  const clients: net.Socket[] = [];
  try {
    const count = 20;
    // The listener closes each (FIN, or a reset with unread bytes): our half-open sockets see an end or a close.
    const ends: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      const { socket, ended } = await rawClient(listener.port, 'GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
      clients.push(socket);
      ends.push(ended);
    }
    await Promise.all(ends);
    t.true(await pollUntil(() => listener.stats.tlsHandshakeErrors === count, 200), `counted: ${listener.stats.tlsHandshakeErrors}`);
    t.true(listener.logger.records.length >= 1);
    t.true(listener.logger.records.length < count, `throttled: ${listener.logger.records.length} warnings`);
    const [first] = listener.logger.records;
    t.regex(first!.message, /^TLS handshake failed: ERR_SSL_\w+; connection closed$/);
    t.regex(String(first!.fields?.client), /^127\.0\.0\.1:\d+$/);
    t.is(first!.fields?.tlsHandshakeErrorsSinceLastWarning, 1);
    t.is(listener.accepted.length, 0, 'nothing reached the pipeline');

    const client = await tlsClient(listener.port);
    clients.push(client);
    t.true(await pollUntil(() => listener.accepted.length === 1, 200), 'a TLS client still gets through');
  } finally {
    for (const client of clients) client.destroy();
    await listener.close();
  }
});

test('a handshake that stalls (nothing sent, half a ClientHello, no answer to the ServerHello) is closed at handshakeTimeoutMs and counted', async (t) => {
  const hello = await clientHello();
  const listener = await startListener(200);
  const stalled: { socket: net.Socket; ended: Promise<unknown> }[] = [];
  try {
    stalled.push(await rawClient(listener.port), await rawClient(listener.port, PARTIAL_CLIENT_HELLO), await midHandshake(listener.port, hello));
    await Promise.all(stalled.map(({ ended }) => ended));
    t.true(await pollUntil(() => listener.stats.tlsHandshakeErrors === 3, 200), `counted: ${listener.stats.tlsHandshakeErrors}`);
    t.is(listener.logger.records[0]?.message, 'TLS handshake failed: ERR_TLS_HANDSHAKE_TIMEOUT; connection closed');
    t.is(listener.accepted.length, 0);
  } finally {
    for (const { socket } of stalled) socket.destroy();
    await listener.close();
  }
});

test('close() stops accepting and ends the handshakes in progress, uncounted', async (t) => {
  const hello = await clientHello();
  const listener = await startListener();
  let stalled: { socket: net.Socket; ended: Promise<unknown> } | undefined;
  try {
    stalled = await midHandshake(listener.port, hello);
    await listener.close();
    await stalled.ended;
    t.is(listener.stats.tlsHandshakeErrors, 0, 'a shutdown is no failed handshake');
    const refused = await t.throwsAsync(connectTo(listener.port));
    t.is((refused as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  } finally {
    stalled?.socket.destroy();
  }
});

test('a bad certificate or key is refused when the listener is built (ERR_PROXY_CONFIG, naming which)', (t) => {
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const cases: [string, () => void, RegExp][] = [
    [
      'not PEM',
      () => checkTlsCredentials({ cert: 'hello', key: TLS.key }),
      /^tls\.cert: expected a PEM certificate, found no "-----BEGIN CERTIFICATE-----" line$/,
    ],
    [
      'a broken certificate',
      () => checkTlsCredentials({ cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', key: TLS.key }),
      /^tls\.cert: expected a PEM certificate, found one that does not parse/,
    ],
    ['a certificate as the key', () => checkTlsCredentials({ cert: TLS.cert, key: TLS.cert }), /^tls\.key: expected a PEM private key/],
    ['another key', () => checkTlsCredentials({ cert: TLS.cert, key: other }), /^tls\.key: expected the private key of tls\.cert, found another key$/],
    [
      'through the constructor',
      () => new TlsListener('127.0.0.1', 0, { cert: TLS.cert, key: other }),
      /^tls\.key: expected the private key of tls\.cert, found another key$/,
    ],
  ];
  for (const [name, build, message] of cases) {
    const error = t.throws(build, undefined, name);
    t.true(error instanceof ProxyError, name);
    t.is((error as ProxyError).code, 'ERR_PROXY_CONFIG', name);
    t.regex(error.message, message, name);
  }
  t.notThrows(() => checkTlsCredentials(TLS));
});
