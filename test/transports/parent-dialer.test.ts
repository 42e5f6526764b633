import 'reflect-metadata';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import test from 'ava';
import { ProxyError } from '../../src/core/errors.js';
import { parseHop } from '../../src/plugins/parent-proxy-url.js';
import { ParentDialer } from '../../src/transports/parent-dialer.js';
import { TcpDialer } from '../../src/transports/tcp-dialer.js';
import { UpstreamPool } from '../../src/transports/upstream-pool.js';
import type { ParentProxy } from '../../src/core/transport.js';
import { closedPort, startRawOrigin } from '../helpers/net.js';

const dialer = new ParentDialer(new TcpDialer());
const parent = (url: string) => parseHop(url, 'test') as ParentProxy;

/** A fake parent that answers the first bytes it gets with `answer` (one write), then stays silent. */
const answering = (answer: string | Buffer | ((first: Buffer) => Buffer | string | undefined)) =>
  startRawOrigin((socket) => {
    socket.once('data', (first: Buffer) => {
      const reply = typeof answer === 'function' ? answer(first) : answer;
      if (reply !== undefined) socket.write(reply);
    });
  });

/** Reads from a dialled (paused) socket until `text` arrived; bounded. */
function readText(socket: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no ${JSON.stringify(text)} within 3 s; got ${JSON.stringify(got)}`)), 3000);
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString('latin1');
      if (got.includes(text)) {
        clearTimeout(timer);
        resolve(got);
      }
    });
    socket.resume();
  });
}

const within = (ms: number) => {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  return { signal: controller.signal, done: () => clearTimeout(timer) };
};

test('bytes after a parent CONNECT answer (same read) are kept for the tunnel, and the socket comes back paused', async (t) => {
  const fake = await answering('HTTP/1.1 200 Connection Established\r\nX-Parent: yes\r\n\r\nBANNER from origin');
  const { signal, done } = within(3000);
  try {
    const socket = await dialer.dial({ host: 'origin.test', port: 25 }, signal, { parent: parent(`http://127.0.0.1:${fake.port}`), tunnel: true });
    t.true(socket.isPaused());
    t.is(await readText(socket, 'BANNER from origin'), 'BANNER from origin');
    socket.destroy();
  } finally {
    done();
    await fake.close();
  }
});

test('bytes after a SOCKS5 success reply (same read) are kept, and the socket comes back paused', async (t) => {
  let step = 0;
  const fake = await startRawOrigin((socket) => {
    socket.on('data', () => {
      step++;
      // Greeting: no authentication; request: success, then the origin's first bytes in the same write.
      if (step === 1) socket.write(Buffer.from([5, 0]));
      else if (step === 2) socket.write(Buffer.concat([Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 25]), Buffer.from('220 smtp ready')]));
    });
  });
  const { signal, done } = within(3000);
  try {
    const socket = await dialer.dial({ host: 'mail.test', port: 25 }, signal, { parent: parent(`socks5://127.0.0.1:${fake.port}`), tunnel: true });
    t.true(socket.isPaused());
    t.is(await readText(socket, '220 smtp ready'), '220 smtp ready');
    socket.destroy();
  } finally {
    done();
    await fake.close();
  }
});

for (const [what, answer, message] of [
  ['a bare LF', 'HTTP/1.1 200 OK\nX: y\n\n', /parent proxy 127\.0\.0\.1:\d+ sent a malformed answer to CONNECT: bare LF/],
  ['a bad status line', 'HTTP/9 two hundred\r\n\r\n', /parent proxy 127\.0\.0\.1:\d+ sent a malformed answer to CONNECT: malformed status line/],
  [
    'an endless head',
    `HTTP/1.1 200 OK\r\n${'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(400)}`,
    /sent an answer head to CONNECT over 16384 bytes/,
  ],
] as const) {
  test(`a parent answering CONNECT with ${what} is ERR_PROXY_PARENT`, async (t) => {
    const fake = await answering(answer);
    const { signal, done } = within(3000);
    try {
      const error = await t.throwsAsync(dialer.dial({ host: 'x.test', port: 443 }, signal, { parent: parent(`http://127.0.0.1:${fake.port}`), tunnel: true }), {
        instanceOf: ProxyError,
      });
      t.is(error.code, 'ERR_PROXY_PARENT');
      t.regex(error.message, message);
    } finally {
      done();
      await fake.close();
    }
  });
}

test('a parent closing before answering CONNECT is ERR_PROXY_PARENT; an abort while it is silent is ERR_PROXY_ABORTED', async (t) => {
  const closing = await startRawOrigin((socket) => socket.once('data', () => socket.end()));
  const silent = await startRawOrigin(() => {});
  try {
    const first = within(3000);
    const closed = await t.throwsAsync(
      dialer.dial({ host: 'x.test', port: 443 }, first.signal, { parent: parent(`http://127.0.0.1:${closing.port}`), tunnel: true }),
    );
    first.done();
    t.is((closed as ProxyError).code, 'ERR_PROXY_PARENT');
    t.regex(closed.message, /closed the connection before answering CONNECT/);
    const second = within(100);
    const aborted = await t.throwsAsync(
      dialer.dial({ host: 'x.test', port: 443 }, second.signal, { parent: parent(`http://127.0.0.1:${silent.port}`), tunnel: true }),
    );
    second.done();
    t.is((aborted as ProxyError).code, 'ERR_PROXY_ABORTED');
  } finally {
    await closing.close();
    await silent.close();
  }
});

test('a parent that refuses the TCP connection is ERR_PROXY_UPSTREAM_CONNECT naming the parent, without credentials', async (t) => {
  const port = await closedPort();
  const { signal, done } = within(3000);
  const error = await t.throwsAsync(dialer.dial({ host: 'x.test', port: 80 }, signal, { parent: parent(`socks5://me:pw123@127.0.0.1:${port}`), tunnel: true }));
  done();
  t.is((error as ProxyError).code, 'ERR_PROXY_UPSTREAM_CONNECT');
  t.is(error.message, `cannot connect to parent proxy 127.0.0.1:${port} (socks5): connection refused`);
});

test('parseHop: names without credentials, keys that tell credentials apart, ports as written, redacted errors', (t) => {
  const hop = parent('http://alice:s%40cret@Parent.Example:80');
  t.like(hop, { protocol: 'http', host: 'parent.example', port: 80, username: 'alice', password: 's@cret', name: 'parent.example:80' });
  t.false(hop.key.includes('s@cret'));
  t.not(parent('http://alice:other@parent.example:80').key, hop.key);
  t.is(parent('http://parent.example:80').key, 'http://parent.example:80');
  t.like(parent('socks5://[::1]:9050'), { host: '::1', port: 9050, name: '[::1]:9050 (socks5)' });
  t.like(parent('http://proxy.test'), { port: 3128 });
  t.is(parseHop('direct', 'x'), 'direct');
  const error = t.throws(() => parseHop('http://u:hunter2@host:1/path', 'rules[0].proxy[1]'));
  t.regex(error.message, /^rules\[0\]\.proxy\[1\]: expected a URL with no path/);
  t.false(error.message.includes('hunter2'));
});

test('the upstream pool keeps connections per (hop, origin): direct and each parent apart', (t) => {
  const pool = new UpstreamPool({ maxIdlePerOrigin: 4, idleTimeoutMs: 60_000 });
  const target = { host: 'origin.test', port: 80 };
  const [a, b] = [parent('http://127.0.0.1:1'), parent('http://127.0.0.1:2')];
  const socket = new net.Socket();
  try {
    pool.give(target, socket, true, a);
    t.is(pool.take(target), undefined);
    t.is(pool.take(target, 'direct'), undefined);
    t.is(pool.take(target, b), undefined);
    t.is(pool.size(target, a), 1);
    t.is(pool.take(target, a), socket);
  } finally {
    pool.close();
    socket.destroy();
  }
});
