import 'reflect-metadata';
import http from 'node:http';
import test from 'ava';
import { ProxyError } from '../../src/core/errors.js';
import { createProxy } from '../../src/proxy.js';
import { exchange, header, withClient } from '../helpers/keep-alive.js';
import { closedPort, connectTo, openTunnel, readUntil, startProxy, startRawOrigin } from '../helpers/net.js';
import { fieldValues, parentChain, recordingOrigin, startHttpParent, startSocksParent } from '../helpers/parent-proxy.js';

const CLIENT_AUTH = `Basic ${Buffer.from('client:pw').toString('base64')}`;
const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`;
const get = (url: string, extra = '') => `GET ${url} HTTP/1.1\r\nHost: ${new URL(url).host}\r\nProxy-Authorization: ${CLIENT_AUTH}\r\n${extra}\r\n`;

test('plain HTTP through an HTTP parent goes in absolute-form with the parent credentials; the client credentials reach neither parent nor origin', async (t) => {
  const origin = await recordingOrigin();
  const parent = await startHttpParent({ auth: 'alice:s3cret' });
  const proxy = startProxy({ plugins: parentChain({ default: [`http://alice:s3cret@127.0.0.1:${parent.port}`] }) });
  await withClient(proxy, [parent, origin], async (client) => {
    const response = await exchange(client, get(`http://app.test:${origin.port}/a?b=1`));
    t.is(response.status, 200);
    t.is(response.body, 'origin /a?b=1');
    t.is(parent.requests.length, 1);
    const [seen] = parent.requests;
    t.is(seen!.method, 'GET');
    t.is(seen!.url, `http://app.test:${origin.port}/a?b=1`);
    t.deepEqual(fieldValues(seen!, 'proxy-authorization'), [basic('alice:s3cret')]);
    t.false(origin.seen[0]!.headers.some((value) => value === CLIENT_AUTH));
  });
});

test('an HTTP parent without credentials in its URL gets no Proxy-Authorization', async (t) => {
  const origin = await recordingOrigin();
  const parent = await startHttpParent();
  const proxy = startProxy({ plugins: parentChain({ default: `http://127.0.0.1:${parent.port}` }) });
  await withClient(proxy, [parent, origin], async (client) => {
    const response = await exchange(client, get(`http://127.0.0.1:${origin.port}/plain`));
    t.is(response.status, 200);
    t.deepEqual(fieldValues(parent.requests[0]!, 'proxy-authorization'), []);
  });
});

test('CONNECT through an HTTP parent goes through its CONNECT with its credentials, never the client ones', async (t) => {
  const origin = await recordingOrigin();
  const parent = await startHttpParent({ auth: 'alice:s3cret' });
  const proxy = await startProxy({ plugins: parentChain({ default: [`http://alice:s3cret@127.0.0.1:${parent.port}`] }) });
  const authority = `secure.test:${origin.port}`;
  const socket = await (async () => {
    const { socket, head } = await openTunnel(proxy.port, authority);
    t.regex(head, /^HTTP\/1\.1 200 /);
    return socket;
  })();
  try {
    socket.write(`GET /tunnelled HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
    const text = await readUntil(socket, (received) => received.includes('origin /tunnelled'));
    t.regex(text, /origin \/tunnelled/);
    t.is(parent.requests.length, 1);
    t.is(parent.requests[0]!.method, 'CONNECT');
    t.is(parent.requests[0]!.url, authority);
    t.deepEqual(fieldValues(parent.requests[0]!, 'proxy-authorization'), [basic('alice:s3cret')]);
  } finally {
    socket.destroy();
    await proxy.close();
    await parent.close();
    await origin.close();
  }
});

for (const status of [407, 403]) {
  test(`a parent answering CONNECT with ${status} is answered 502 naming it, without its credentials, and not failed over`, async (t) => {
    const refusing = await startHttpParent({ refuse: status });
    const spare = await startHttpParent();
    const proxy = await startProxy({ plugins: parentChain({ default: [`http://bob:hunter2@127.0.0.1:${refusing.port}`, `http://127.0.0.1:${spare.port}`] }) });
    try {
      const socket = await connectTo(proxy.port, 'CONNECT secure.test:443 HTTP/1.1\r\nHost: secure.test:443\r\n\r\n');
      const text = await readUntil(socket, (received) => received.includes(`answered ${status}`)).finally(() => socket.destroy());
      t.regex(text, /^HTTP\/1\.1 502 /);
      t.true(text.includes(`parent proxy 127.0.0.1:${refusing.port} answered ${status} ${http.STATUS_CODES[status]}`), text);
      t.false(text.includes('hunter2'));
      t.false(text.includes('bob'));
      t.is(spare.requests.length, 0);
    } finally {
      await proxy.close();
      await refusing.close();
      await spare.close();
    }
  });
}

test('a parent answering a plain HTTP request with 407 becomes a 502 naming it; the client connection stays usable', async (t) => {
  const origin = await recordingOrigin();
  const parent = await startHttpParent({ auth: 'alice:right' });
  const proxy = startProxy({
    plugins: parentChain({ rules: [{ hosts: ['127.0.0.1'], proxy: 'direct' }], default: [`http://alice:wrong@127.0.0.1:${parent.port}`] }),
  });
  await withClient(proxy, [parent, origin], async (client) => {
    const refused = await exchange(client, get(`http://app.test:${origin.port}/x`));
    t.is(refused.status, 502);
    t.is(refused.body, `parent proxy 127.0.0.1:${parent.port} answered 407 Proxy Authentication Required\n`);
    t.is(header(refused, 'proxy-authenticate'), undefined);
    t.false(refused.raw.includes('wrong'));
    const next = await exchange(client, get(`http://127.0.0.1:${origin.port}/after`));
    t.is(next.status, 200);
    t.is(next.body, 'origin /after');
  });
});

test('an HTTPS parent is reached over TLS, trusted through caFile or its own ca; without it, TLS fails and the next parent is used', async (t) => {
  const origin = await recordingOrigin();
  const secure = await startHttpParent({ tls: true, auth: 'tls:user' });
  const plain = await startHttpParent();
  const ca = 'test/fixtures/localhost-cert.pem';
  const proxy = startProxy({
    plugins: parentChain({
      caFile: ca,
      rules: [
        { hosts: ['viafile.test'], proxy: [`https://tls:user@127.0.0.1:${secure.port}`] },
        { hosts: ['viaentry.test'], proxy: [{ url: `https://tls:user@localhost:${secure.port}`, ca }] },
      ],
      default: [{ url: `https://127.0.0.1:${secure.port}`, ca: 'test/fixtures/localhost-key.pem' }, `http://127.0.0.1:${plain.port}`],
    }),
  });
  await withClient(proxy, [secure, plain, origin], async (client) => {
    const first = await exchange(client, get(`http://viafile.test:${origin.port}/one`));
    t.is(first.body, 'origin /one');
    const second = await exchange(client, get(`http://viaentry.test:${origin.port}/two`));
    t.is(second.body, 'origin /two');
    t.deepEqual(
      secure.requests.map((request) => [request.url, fieldValues(request, 'proxy-authorization')[0]]),
      [
        [`http://viafile.test:${origin.port}/one`, basic('tls:user')],
        [`http://viaentry.test:${origin.port}/two`, basic('tls:user')],
      ],
    );
    // The default's https parent has a key file as its CA: its certificate cannot be trusted.
    const failedOver = await exchange(client, get(`http://other.test:${origin.port}/three`));
    t.is(failedOver.body, 'origin /three');
    t.is(plain.requests.length, 1);
    t.is(secure.requests.length, 2);
  });
});

test('CONNECT through an HTTPS parent', async (t) => {
  const origin = await recordingOrigin();
  const secure = await startHttpParent({ tls: true });
  const proxy = await startProxy({ plugins: parentChain({ caFile: 'test/fixtures/localhost-cert.pem', default: `https://localhost:${secure.port}` }) });
  const { socket, head } = await openTunnel(proxy.port, `secure.test:${origin.port}`);
  try {
    t.regex(head, /^HTTP\/1\.1 200 /);
    socket.write(`GET /over-tls HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n`);
    t.regex(await readUntil(socket, (text) => text.includes('origin /over-tls')), /origin \/over-tls/);
    t.is(secure.requests[0]!.method, 'CONNECT');
  } finally {
    socket.destroy();
    await proxy.close();
    await secure.close();
    await origin.close();
  }
});

test('through a SOCKS5 parent, plain HTTP goes in origin-form and names are resolved by the parent (domain address type), with user/password', async (t) => {
  const origin = await recordingOrigin();
  const socks = await startSocksParent({ auth: { user: 'sam', pass: 'p@ss word' } });
  const proxy = startProxy({ plugins: parentChain({ default: `socks5://sam:p%40ss%20word@127.0.0.1:${socks.port}` }) });
  await withClient(proxy, [socks, origin], async (client) => {
    const response = await exchange(client, get(`http://named.test:${origin.port}/s`));
    t.is(response.status, 200);
    t.is(origin.seen[0]!.url, '/s');
    t.false(origin.seen[0]!.headers.some((value) => value === CLIENT_AUTH));
    t.deepEqual(socks.requests, [{ atyp: 3, host: 'named.test', port: origin.port, user: 'sam' }]);
  });
});

test('CONNECT through a SOCKS5 parent', async (t) => {
  const origin = await recordingOrigin();
  const socks = await startSocksParent();
  const proxy = await startProxy({ plugins: parentChain({ default: `socks5://127.0.0.1:${socks.port}` }) });
  const { socket, head } = await openTunnel(proxy.port, `tunnel.test:${origin.port}`);
  try {
    t.regex(head, /^HTTP\/1\.1 200 /);
    socket.write(`GET /socks-tunnel HTTP/1.1\r\nHost: tunnel.test\r\nConnection: close\r\n\r\n`);
    t.regex(await readUntil(socket, (text) => text.includes('origin /socks-tunnel')), /origin \/socks-tunnel/);
    t.deepEqual(socks.requests, [{ atyp: 3, host: 'tunnel.test', port: origin.port, user: undefined }]);
  } finally {
    socket.destroy();
    await proxy.close();
    await socks.close();
    await origin.close();
  }
});

test('a SOCKS5 parent refusing (reply 5, failed authentication) is answered 502 naming it and the reply, and not failed over', async (t) => {
  const refusing = await startSocksParent({ reply: 5 });
  const strict = await startSocksParent({ auth: { user: 'u', pass: 'right' } });
  const spare = await startSocksParent();
  const proxy = startProxy({
    plugins: parentChain({
      rules: [{ hosts: ['auth.test'], proxy: [`socks5://u:wrong@127.0.0.1:${strict.port}`, `socks5://127.0.0.1:${spare.port}`] }],
      default: [`socks5://127.0.0.1:${refusing.port}`, `socks5://127.0.0.1:${spare.port}`],
    }),
  });
  await withClient(proxy, [refusing, strict, spare], async (client) => {
    const refused = await exchange(client, get('http://refused.test:8080/'));
    t.is(refused.status, 502);
    t.is(refused.body, `parent proxy 127.0.0.1:${refusing.port} (socks5) refused: connection refused (reply 5)\n`);
    const unauthorized = await exchange(client, get('http://auth.test:8080/'));
    t.is(unauthorized.status, 502);
    t.is(unauthorized.body, `parent proxy 127.0.0.1:${strict.port} (socks5) refused: authentication failed\n`);
    t.false(unauthorized.raw.includes('wrong'));
    t.is(spare.connections, 0);
  });
});

test('failover: a parent that cannot be connected passes to the next; when none can, the 502 names each', async (t) => {
  const origin = await recordingOrigin();
  const parent = await startHttpParent();
  const [downA, downB] = [await closedPort(), await closedPort()];
  const proxy = startProxy({
    plugins: parentChain({
      rules: [{ hosts: ['none.test'], proxy: [`http://127.0.0.1:${downA}`, `socks5://127.0.0.1:${downB}`] }],
      default: [`http://u:secret@127.0.0.1:${downA}`, `http://127.0.0.1:${parent.port}`],
    }),
  });
  await withClient(proxy, [parent, origin], async (client) => {
    const response = await exchange(client, get(`http://fails.over:${origin.port}/f`));
    t.is(response.body, 'origin /f');
    t.is(parent.requests[0]!.url, `http://fails.over:${origin.port}/f`);
    const none = await exchange(client, get(`http://none.test:${origin.port}/n`));
    t.is(none.status, 502);
    t.true(none.body.includes(`cannot connect to parent proxy 127.0.0.1:${downA}: connection refused`), none.body);
    t.true(none.body.includes(`cannot connect to parent proxy 127.0.0.1:${downB} (socks5): connection refused`), none.body);
  });
});

test('each request on one kept-alive client connection takes its own route: direct, one parent, another', async (t) => {
  const origin = await recordingOrigin();
  const corp = await startHttpParent();
  const socks = await startSocksParent();
  const proxy = startProxy({
    plugins: parentChain({
      rules: [
        { hosts: ['127.0.0.1'], proxy: 'direct' },
        { hosts: ['*.corp.example'], ports: [origin.port], proxy: [`http://127.0.0.1:${corp.port}`] },
      ],
      default: [`socks5://127.0.0.1:${socks.port}`],
    }),
  });
  await withClient(proxy, [corp, socks, origin], async (client) => {
    for (const [url, body] of [
      [`http://127.0.0.1:${origin.port}/direct`, 'origin /direct'],
      [`http://wiki.corp.example:${origin.port}/corp`, 'origin /corp'],
      [`http://public.example:${origin.port}/socks`, 'origin /socks'],
      [`http://127.0.0.1:${origin.port}/direct-again`, 'origin /direct-again'],
      [`http://wiki.corp.example:${origin.port}/corp-again`, 'origin /corp-again'],
    ] as const) {
      const response = await exchange(client, get(url));
      t.is(response.body, body);
    }
    t.deepEqual(
      corp.requests.map((request) => request.url),
      [`http://wiki.corp.example:${origin.port}/corp`, `http://wiki.corp.example:${origin.port}/corp-again`],
    );
    t.deepEqual(
      socks.requests.map((request) => request.host),
      ['public.example'],
    );
    t.deepEqual(
      origin.seen.map((request) => request.url),
      ['/direct', '/corp', '/socks', '/direct-again', '/corp-again'],
    );
    // Each route keeps its own kept-alive upstream: one connection to the parent, reused.
    t.is(corp.connections, 1);
  });
});

test('a parent that accepts but never answers is a 504 naming it after connectTimeoutMs, and the next parent is tried', async (t) => {
  const silent = await startRawOrigin(() => {});
  const parent = await startHttpParent();
  const origin = await recordingOrigin();
  const proxy = await startProxy({
    plugins: parentChain(
      {
        rules: [{ hosts: ['silent.test'], proxy: [`http://127.0.0.1:${silent.port}`] }],
        default: [`socks5://127.0.0.1:${silent.port}`, `http://127.0.0.1:${parent.port}`],
      },
      { connectTimeoutMs: 200 },
    ),
  });
  try {
    const socket = await connectTo(proxy.port, 'CONNECT silent.test:443 HTTP/1.1\r\nHost: silent.test:443\r\n\r\n');
    const text = await readUntil(socket, (received) => received.includes('timed out')).finally(() => socket.destroy());
    t.regex(text, /^HTTP\/1\.1 504 /);
    t.true(text.includes(`connecting to silent.test:443 through parent proxy 127.0.0.1:${silent.port} timed out after 200 ms`), text);
    const tunnel = await openTunnel(proxy.port, `other.test:${origin.port}`);
    tunnel.socket.destroy();
    t.regex(tunnel.head, /^HTTP\/1\.1 200 /);
    t.is(parent.requests[0]!.url, `other.test:${origin.port}`);
  } finally {
    await proxy.close();
    await silent.close();
    await parent.close();
    await origin.close();
  }
});

test('a bad parent URL stops start-up with a message that names where and hides the password', async (t) => {
  const error = await t.throwsAsync(createProxy({ port: 0, plugins: parentChain({ default: ['ftp://user:topsecret@host:21'] }) }), { instanceOf: ProxyError });
  t.regex(error.message, /default\[0\]: expected a http:\/\/, https:\/\/ or socks5:\/\/ URL/);
  t.false(error.message.includes('topsecret'));
  const unordered = await t.throwsAsync(
    createProxy({ port: 0, plugins: ['head-parser', { name: 'upstream-proxy', options: {} }, 'connect-handler', 'http-forward', 'upstream-dialer'] }),
    { instanceOf: ProxyError },
  );
  t.regex(unordered.message, /expected "upstream-proxy" later in the chain/);
});
