import { writeFileSync } from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import bcrypt from 'bcryptjs';
import { tap } from 'rxjs';
import { container } from 'tsyringe';
import { ProxyError } from '../../src/core/errors.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { resolvePlugins } from '../../src/core/registry.js';
import { BUILT_IN_PLUGINS } from '../../src/plugins/all.js';
import { CREDENTIALS_CACHE_SIZE, ProxyAuthPlugin } from '../../src/plugins/proxy-auth.plugin.js';
import { createProxyFromConfig } from '../../src/proxy.js';
import { exchange, get, header, ok, openClient, startKeepAliveOrigin, withClient, type WireResponse } from '../helpers/keep-alive.js';
import { connectTo, readUntil, startProxy, startRawOrigin } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';
import { collect, parseResponse } from '../helpers/wire.js';

// Cost 4: the cheapest bcrypt, so the suite stays fast; the plugin treats any cost alike.
const ALICE = bcrypt.hashSync('wonderland', 4);
const BOB = bcrypt.hashSync('builder', 4);
const basic = (user: string, password: string) => `Proxy-Authorization: Basic ${Buffer.from(`${user}:${password}`).toString('base64')}\r\n`;

const chain = (auth: Record<string, unknown>, extra: (string | ProxyPlugin)[] = []) => [
  'head-parser',
  'connect-handler',
  'http-forward',
  { name: 'proxy-auth', options: auth },
  ...extra,
  'upstream-dialer',
];

/** An origin that answers every request with "hello" and records what it received. */
const helloOrigin = () => startKeepAliveOrigin(() => ok('hello'));

/** A 407 with the challenge, on a connection the proxy keeps open for the retry with credentials. */
function assert407(t: ExecutionContext, response: WireResponse, realm = 'proxyline'): void {
  t.is(response.statusLine, 'HTTP/1.1 407 Proxy Authentication Required');
  t.is(header(response, 'proxy-authenticate'), `Basic realm="${realm}"`);
  t.is(header(response, 'connection'), undefined, 'no Connection: close: the retry may use this connection');
}

/** Sends one request on a fresh connection and returns the proxy's answer. */
async function once(port: number, request: string): Promise<WireResponse> {
  const client = await openClient(port);
  try {
    return await exchange(client, request);
  } finally {
    client.socket.destroy();
  }
}

test('after a 407 the same connection carries the retry with credentials: a plain GET, then a CONNECT', async (t) => {
  const origin = await helloOrigin();
  await withClient(startProxy({ plugins: chain({ users: { alice: ALICE } }) }), [origin], async (client) => {
    assert407(t, await exchange(client, get(origin.port, '/first')));
    const retried = await exchange(client, get(origin.port, '/first', basic('alice', 'wonderland')));
    t.is(retried.status, 200);
    t.is(retried.body, 'hello');
    // A CONNECT refused, then retried with credentials on the same connection: the bytes after
    // the retry's head are tunnel bytes, and reach the origin as its next request.
    const authority = `127.0.0.1:${origin.port}`;
    client.socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    assert407(t, await client.reader.next({ method: 'CONNECT' }));
    client.socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${basic('alice', 'wonderland')}\r\n`);
    // The reader frames a CONNECT's 200 as it would a HEAD response: a head and no body.
    t.is((await client.reader.next({ method: 'HEAD' })).statusLine, 'HTTP/1.1 200 Connection Established');
    client.socket.write(`GET /through-the-tunnel HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    const tunnelled = await client.reader.next();
    t.is(tunnelled.body, 'hello');
    t.deepEqual(
      origin.requests.map((request) => request.target),
      ['/first', '/through-the-tunnel'],
    );
  });
});

test('requests without credentials are refused 407 with a challenge, plain GET and CONNECT alike', async (t) => {
  const origin = await helloOrigin();
  const proxy = await startProxy({ plugins: chain({ users: { alice: ALICE } }) });
  try {
    const plain = await once(proxy.port, get(origin.port, '/secret'));
    assert407(t, plain);
    t.regex(plain.body, /proxy authentication required/);

    const client = await openClient(proxy.port);
    try {
      client.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
      assert407(t, await client.reader.next({ method: 'CONNECT' }));
    } finally {
      client.socket.destroy();
    }
    t.is(origin.connections, 0, 'nothing was dialled for a refused request');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a wrong password, an unknown user and malformed credentials are refused 407', async (t) => {
  const origin = await helloOrigin();
  const proxy = await startProxy({ plugins: chain({ users: { alice: ALICE }, realm: 'say "hi" \\ bye' }) });
  const realm = 'say \\"hi\\" \\\\ bye';
  try {
    assert407(t, await once(proxy.port, get(origin.port, '/', basic('alice', 'wrong'))), realm);
    assert407(t, await once(proxy.port, get(origin.port, '/', basic('mallory', 'wonderland'))), realm);
    assert407(t, await once(proxy.port, get(origin.port, '/', 'Proxy-Authorization: Bearer abc\r\n')), realm);
    assert407(t, await once(proxy.port, get(origin.port, '/', 'Proxy-Authorization: Basic !!!\r\n')), realm);
    const noColon = `Proxy-Authorization: Basic ${Buffer.from('alicewonderland').toString('base64')}\r\n`;
    assert407(t, await once(proxy.port, get(origin.port, '/', noColon)), realm);
    // Two credentials fields are ambiguous, even when one of them is right.
    assert407(t, await once(proxy.port, get(origin.port, '/', basic('alice', 'wonderland') + basic('alice', 'wonderland'))), realm);
    t.is(origin.connections, 0);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('the right credentials pass, and the origin never sees Proxy-Authorization', async (t) => {
  const origin = await helloOrigin();
  const proxy = await startProxy({ plugins: chain({ users: { alice: ALICE, bob: BOB } }) });
  try {
    const response = await once(proxy.port, get(origin.port, '/in', `${basic('bob', 'builder')}Connection: close\r\n`));
    t.is(response.status, 200);
    t.is(response.body, 'hello');
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    const lower = await once(proxy.port, get(origin.port, '/lower', basic('alice', 'wonderland').replace('Basic', 'basic') + 'Connection: close\r\n'));
    t.is(lower.status, 200);
    t.deepEqual(origin.lines, ['GET /in HTTP/1.1', 'GET /lower HTTP/1.1']);
    for (const request of origin.requests) t.is(header(request, 'proxy-authorization'), undefined);
    t.notRegex(origin.received.join(''), /proxy-authorization/i);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('CONNECT with credentials gets 200 Connection Established and a working tunnel', async (t) => {
  let connectHead = '';
  const echo = await startRawOrigin((socket) => {
    socket.on('data', (chunk: Buffer) => {
      connectHead += chunk.toString('latin1');
      socket.write(chunk);
    });
  });
  const proxy = await startProxy({ plugins: chain({ users: { alice: ALICE } }) });
  try {
    const authority = `127.0.0.1:${echo.port}`;
    const socket = await connectTo(proxy.port, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${basic('alice', 'wonderland')}\r\n`);
    try {
      const head = await readUntil(socket, (text) => text.includes('\r\n\r\n'));
      t.regex(head, /^HTTP\/1\.1 200 Connection Established\r\n/);
      socket.write('ping through the tunnel');
      t.is(await readUntil(socket, (text) => text.includes('ping through the tunnel')), 'ping through the tunnel', 'echoed back');
      t.is(connectHead, 'ping through the tunnel', 'the origin got the tunnel bytes and no CONNECT head');
    } finally {
      socket.destroy();
    }
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('two requests on one kept-alive connection both pass with one bcrypt check; other credentials are checked again', async (t) => {
  const origin = await helloOrigin();
  // The plugin as an instance, so the test can see how each check was answered.
  const auth = new ProxyAuthPlugin({ realm: 'proxyline', users: { alice: ALICE } }, process.cwd());
  const answers: string[] = [];
  const authenticate = auth.authenticate.bind(auth);
  auth.authenticate = (headers) => {
    const result = authenticate(headers);
    answers.push(result instanceof Promise ? 'bcrypt' : String(result));
    return result;
  };
  await withClient(startProxy({ plugins: ['head-parser', 'connect-handler', 'http-forward', auth, 'upstream-dialer'] }), [origin], async (client) => {
    const first = await exchange(client, get(origin.port, '/1', basic('alice', 'wonderland')));
    const second = await exchange(client, get(origin.port, '/2', basic('alice', 'wonderland')));
    t.is(first.status, 200);
    t.is(second.status, 200);
    t.deepEqual(answers, ['bcrypt'], 'bcrypt ran once: the second request reused the credentials this connection proved');
    const third = await exchange(client, get(origin.port, '/3', basic('alice', 'wrong')));
    t.is(third.status, 407, 'other credentials on the same connection are checked again');
    t.false(client.reader.isEnded, 'the connection stays open');
    t.deepEqual(origin.lines, ['GET /1 HTTP/1.1', 'GET /2 HTTP/1.1']);
  });
});

test('verified credentials are cached: a hit answers at once, a miss waits for bcrypt; the cache is bounded', async (t) => {
  const plugin = new ProxyAuthPlugin({ realm: 'r', users: { alice: ALICE } }, process.cwd());
  const headers = (user: string, password: string): [string, string][] => [
    ['Proxy-Authorization', `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`],
  ];
  const miss = plugin.authenticate(headers('alice', 'wonderland'));
  t.true(miss instanceof Promise, 'the first check runs bcrypt');
  const again = plugin.authenticate(headers('alice', 'wonderland'));
  t.is(again, miss, 'a concurrent check of the same credentials shares the bcrypt run');
  t.is(await miss, 'alice');
  t.is(plugin.authenticate(headers('alice', 'wonderland')), 'alice', 'a cache hit needs no await');
  t.is(await plugin.authenticate(headers('alice', 'wrong')), undefined);
  t.true(plugin.authenticate(headers('alice', 'wrong')) instanceof Promise, 'failures are not cached');
  t.is(await plugin.authenticate(headers('nobody', 'x')), undefined, 'an unknown user is refused after a dummy compare');
  t.is(plugin.authenticate([]), undefined);

  // Passwords that only differ past bcrypt's 72-byte limit all match, which fills the cache cheaply.
  const long = 'w'.repeat(72);
  const many = new ProxyAuthPlugin({ realm: 'r', users: { carol: bcrypt.hashSync(long, 4) } }, process.cwd());
  t.is(await many.authenticate(headers('carol', `${long}first`)), 'carol');
  for (let i = 0; i < CREDENTIALS_CACHE_SIZE; i++) await many.authenticate(headers('carol', `${long}${i}`));
  t.true(many.authenticate(headers('carol', `${long}first`)) instanceof Promise, 'the least recently used entry was evicted');
  t.is(many.authenticate(headers('carol', `${long}${CREDENTIALS_CACHE_SIZE - 1}`)), 'carol', 'a recent entry is still cached');
});

test('users from an htpasswd file given relative to plugins.json, merged with inline users', async (t) => {
  await withTempDir('proxy-auth-', async (dir) => {
    const origin = await helloOrigin();
    const services = container.createChildContainer();
    services.registerInstance(Logger, new SilentLogger());
    let proxy: Awaited<ReturnType<typeof createProxyFromConfig>> | undefined;
    try {
      writeFileSync(path.join(dir, 'users.htpasswd'), `# proxy users\r\nalice:${ALICE.replace(/^\$2b\$/, () => '$2y$')}\r\n\r\n`);
      writeFileSync(
        path.join(dir, 'plugins.json'),
        JSON.stringify({
          plugins: chain({ htpasswd: 'users.htpasswd', users: { bob: BOB }, realm: 'files' }).map((entry) =>
            typeof entry === 'string' ? { name: entry } : entry,
          ),
        }),
      );
      proxy = await createProxyFromConfig(path.join(dir, 'plugins.json'), { container: services, host: '127.0.0.1', port: 0, gracePeriodMs: 0 });
      const { port } = await proxy.listen();
      t.is((await once(port, get(origin.port, '/a', basic('alice', 'wonderland')))).status, 200, 'a $2y$ entry from the file');
      t.is((await once(port, get(origin.port, '/b', basic('bob', 'builder')))).status, 200, 'an inline user');
      assert407(t, await once(port, get(origin.port, '/c', basic('alice', 'builder'))), 'files');
      t.deepEqual(origin.lines, ['GET /a HTTP/1.1', 'GET /b HTTP/1.1']);
    } finally {
      await proxy?.close(0);
      await origin.close();
    }
  });
});

test('a bad htpasswd file or bad users stop start-up with ERR_PROXY_CONFIG naming the file and line', async (t) => {
  await withTempDir('proxy-auth-', async (dir) => {
    const file = path.join(dir, 'users.htpasswd');
    const resolve = (options: Record<string, unknown>) =>
      resolvePlugins(['head-parser', { name: 'proxy-auth', options }], { catalog: BUILT_IN_PLUGINS, container, baseDir: dir, source: 'test.json' });
    const refused = async (options: Record<string, unknown>, message: RegExp) => {
      const error = await t.throwsAsync(resolve(options), { instanceOf: ProxyError, message });
      t.is(error?.code, 'ERR_PROXY_CONFIG');
    };
    writeFileSync(file, `alice:${ALICE}\nthis line has no colon\n`);
    await refused(
      { htpasswd: 'users.htpasswd' },
      /^test\.json: plugins\[1\] \("proxy-auth"\): cannot construct ProxyAuthPlugin: htpasswd file .*users\.htpasswd line 2: expected "name:bcrypt-hash", found a line without ":"$/,
    );
    writeFileSync(file, `alice:${ALICE}\nbob:$apr1$abc$defghijklmnopqrstuv\n`);
    await refused({ htpasswd: 'users.htpasswd' }, /users\.htpasswd line 2 \(user "bob"\): expected a bcrypt hash .*, found an MD5 \(\$apr1\$\) hash$/);
    writeFileSync(file, `alice:plaintext-secret\n`);
    await refused(
      { htpasswd: 'users.htpasswd' },
      /line 1 \(user "alice"\): expected a bcrypt hash .*, found something else \(16 characters: crypt or plain text\?\)$/,
    );
    writeFileSync(file, `alice:${ALICE.slice(0, -1)}\n`);
    await refused({ htpasswd: 'users.htpasswd' }, /line 1 \(user "alice"\): .*found a malformed bcrypt hash \(\$2b\$…, 59 characters\)$/);
    writeFileSync(file, `:${ALICE}\n`);
    await refused({ htpasswd: 'users.htpasswd' }, /line 1: expected a user name before ":", found none$/);
    writeFileSync(file, `alice:${ALICE}\nbob:${BOB}\nalice:${BOB}\n`);
    await refused({ htpasswd: 'users.htpasswd' }, /line 3: expected each user once, found "alice" again \(first on line 1\)$/);
    writeFileSync(file, `alice:${ALICE}\nbob:${BOB}\n`);
    await refused({ htpasswd: 'users.htpasswd', users: { bob: BOB } }, /user "bob": expected in "htpasswd" or in "users", found in both \(htpasswd line 2\)$/);
    await refused({ htpasswd: 'missing.htpasswd' }, /htpasswd: expected a readable file, found .*missing\.htpasswd failing with ENOENT$/);
    writeFileSync(file, '# nobody yet\n');
    await refused({ htpasswd: 'users.htpasswd' }, /expected at least one user in "htpasswd" or "users", found none$/);
    await refused({}, /found none$/);
    await refused({ users: { alice: 'not-a-hash' } }, /options\.users\.alice: expected to match pattern/);
    await refused({ users: { alice: ALICE }, realm: 'line\r\nbreak' }, /options\.realm: expected to match pattern/);
  });
});

test('a later plugin sees exchange.user; a refused request has none', async (t) => {
  const origin = await helloOrigin();
  const seen: (string | undefined)[] = [];
  const recorder: ProxyPlugin = {
    name: 'user-recorder',
    inbound: () => tap((event) => void (event.kind === 'request-head' && seen.push(event.exchange.user))),
  };
  const proxy = await startProxy({ plugins: chain({ users: { alice: ALICE, bob: BOB } }, [recorder]) });
  try {
    t.is((await once(proxy.port, get(origin.port, '/', basic('bob', 'builder')))).status, 200);
    t.is((await once(proxy.port, get(origin.port, '/', basic('alice', 'wonderland')))).status, 200);
    assert407(t, await once(proxy.port, get(origin.port, '/', basic('alice', 'nope'))));
    t.deepEqual(seen, ['bob', 'alice', undefined]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('the 407 is sent in order after earlier responses on a kept-alive connection', async (t) => {
  const origin = await helloOrigin();
  await withClient(startProxy({ plugins: chain({ users: { alice: ALICE } }) }), [origin], async (client) => {
    const all = collect(client.socket);
    // Pipelined: a good request, then one with a wrong password; answers come in request order.
    client.socket.write(get(origin.port, '/good', basic('alice', 'wonderland')) + get(origin.port, '/bad', basic('alice', 'bad')));
    const text = (await all).text;
    const firstEnd = text.indexOf('hello') + 'hello'.length;
    t.regex(text.slice(0, firstEnd), /^HTTP\/1\.1 200 OK\r\n/);
    t.is(parseResponse(text.slice(firstEnd)).statusLine, 'HTTP/1.1 407 Proxy Authentication Required');
    t.deepEqual(origin.lines, ['GET /good HTTP/1.1']);
  });
});
