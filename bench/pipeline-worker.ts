// One measurement of `npm run bench:pipeline`, in its own process: the proxy built from one
// plugins.json, fed kept-alive requests over in-memory duplex pairs (client ↔ proxy ↔ origin), so
// what is measured is the proxy's JavaScript per request, without system calls or other
// processes competing. Prints one JSON line: CPU µs per request (whole process: the fake
// clients and origin cost the same for every chain, so differences are the chain's).
import 'reflect-metadata';
import { Duplex } from 'node:stream';
import { container } from 'tsyringe';
import { Logger, SilentLogger } from '../src/core/logger.js';
import { createProxyFromConfig } from '../src/proxy.js';
import { Dialer, type PeerAddress } from '../src/core/transport.js';

const [config = '', authorization = '', clientsArg = '50', requestsArg = '2000'] = process.argv.slice(2);
const CLIENTS = Number(clientsArg);
const REQUESTS = Number(requestsArg);
const WARM_UP = 400;

type Side = Duplex & { setNoDelay(): void };

/** Two connected in-memory sockets; bytes cross on the next turn of the event loop, as on a real socket. */
function socketPair(): [Side, Side] {
  const sides: Side[] = [];
  const make = (other: () => Side): Side => {
    const side = new Duplex({
      allowHalfOpen: true,
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        setImmediate(() => other().push(chunk));
        callback();
      },
      final(callback) {
        setImmediate(() => other().push(null));
        callback();
      },
    }) as Side;
    side.setNoDelay = () => {};
    return side;
  };
  sides.push(
    make(() => sides[1]!),
    make(() => sides[0]!),
  );
  return [sides[0]!, sides[1]!];
}

const BODY = Buffer.alloc(1024, 0x62);
const RESPONSE = Buffer.concat([
  Buffer.from(
    'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\nDate: Thu, 26 Nov 2026 17:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\n',
  ),
  BODY,
]);
const HEAD_END = Buffer.from('\r\n\r\n');

/** An origin per upstream connection: answers every request head (no bodies here) with RESPONSE. */
const dialer = {
  dial(): Promise<Duplex> {
    const [proxySide, originSide] = socketPair();
    originSide.on('data', (chunk: Buffer) => {
      for (let at = chunk.indexOf(HEAD_END); at >= 0; at = chunk.indexOf(HEAD_END, at + 4)) originSide.write(RESPONSE);
    });
    proxySide.pause(); // as TcpDialer hands it over
    return Promise.resolve(proxySide);
  },
};

let accept: ((socket: Duplex, peer: PeerAddress) => void) | undefined;
const listener = {
  listen(onConnection: (socket: Duplex, peer: PeerAddress) => void) {
    accept = onConnection;
    return Promise.resolve({ host: 'memory', port: 0 });
  },
  async close() {},
};

const REQUEST = Buffer.from(
  `GET http://127.0.0.1:8081/ HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n${authorization ? `Proxy-Authorization: ${authorization}\r\n` : ''}\r\n`,
);

/** One client connection: `count` requests, one after the other, each waiting for its whole response. */
function client(count: number): Promise<void> {
  const [clientSide, proxySide] = socketPair();
  proxySide.pause();
  accept!(proxySide, { address: '127.0.0.1', port: 40000 });
  let responseLength = 0;
  let received = 0;
  let done = 0;
  return new Promise((resolve, reject) => {
    clientSide.on('data', (chunk: Buffer) => {
      if (responseLength === 0) {
        const end = chunk.indexOf(HEAD_END);
        if (!chunk.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) return reject(new Error(`not a 200: ${chunk.subarray(0, 80).toString()}`));
        responseLength = end + 4 + BODY.length;
      }
      received += chunk.length;
      while (received >= responseLength) {
        received -= responseLength;
        if (++done === count) {
          clientSide.end();
          return resolve();
        }
        clientSide.write(REQUEST);
      }
    });
    clientSide.write(REQUEST);
  });
}

const child = container.createChildContainer();
child.registerInstance(Logger, new SilentLogger());
child.registerInstance(Dialer, dialer);
const server = await createProxyFromConfig(config, { container: child, listener, gracePeriodMs: 0 });
await server.listen();
await Promise.all(Array.from({ length: CLIENTS }, () => client(WARM_UP)));
const cpu0 = process.cpuUsage();
const started = performance.now();
await Promise.all(Array.from({ length: CLIENTS }, () => client(REQUESTS)));
const cpu = process.cpuUsage(cpu0);
const requests = CLIENTS * REQUESTS;
process.stdout.write(
  `${JSON.stringify({ cpuUsPerRequest: (cpu.user + cpu.system) / requests, requestsPerSecond: (requests * 1000) / (performance.now() - started) })}\n`,
);
await server.close(0);
process.exit(0);
