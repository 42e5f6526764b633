// examples/mock-responder on real loopback sockets: matching requests are answered from the routes
// file (status, headers, body), everything else is forwarded, on one kept-alive connection; the
// logs say who answered; a bad routes file stops start-up naming the entry.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { container } from 'tsyringe';
import { ProxyError } from '../../src/core/errors.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import { createProxy, createProxyFromConfig } from '../../src/proxy.js';
import { exchange, get, header, ok, openClient, startKeepAliveOrigin } from '../helpers/keep-alive.js';
import { ROOT } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';
import { pollUntil } from '../helpers/wire.js';

const MODULE = path.join(ROOT, 'dist/examples/mock-responder/mock-responder.plugin.js');

/** A Logger that keeps each info line. */
class LineLogger implements Logger {
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(message);
  }
  warn(): void {}
  error(): void {}
}

test('examples/mock-responder/plugins.json: mocked routes and forwarded requests on one kept-alive connection, and the log says who answered', async (t) => {
  const origin = await startKeepAliveOrigin((request) => ok(`origin ${request.method} ${request.target}`));
  const logger = new LineLogger();
  const services = container.createChildContainer();
  services.registerInstance(Logger, logger);
  const proxy = await createProxyFromConfig(path.join(ROOT, 'examples/mock-responder/plugins.json'), { container: services, port: 0, gracePeriodMs: 0 });
  const { port } = await proxy.listen();
  const client = await openClient(port);
  try {
    const user = await exchange(client, 'GET http://api.example/users/42 HTTP/1.1\r\nHost: api.example\r\n\r\n');
    t.is(user.status, 200);
    t.is(header(user, 'content-type'), 'application/json');
    t.deepEqual(JSON.parse(user.body), { id: 42, name: 'Ada Lovelace' });
    t.is(header(user, 'connection'), undefined);

    const forwarded = await exchange(client, get(origin.port, '/not-mocked'));
    t.is(forwarded.body, 'origin GET /not-mocked');

    const list = await exchange(client, 'GET http://API.example:80/users HTTP/1.1\r\nHost: api.example\r\n\r\n');
    t.is(list.status, 200, 'the URL is matched in its normal form: host in lower case, no default port');
    t.deepEqual(
      (JSON.parse(list.body) as { name: string }[]).map((entry) => entry.name),
      ['Ada Lovelace', 'Grace Hopper'],
      'bodyFile is read relative to the routes file',
    );

    const created = await exchange(client, 'POST http://api.example/users HTTP/1.1\r\nHost: api.example\r\nContent-Length: 13\r\n\r\n{"name":"Al"}');
    t.is(created.statusLine, 'HTTP/1.1 201 Created');
    t.is(header(created, 'location'), 'http://api.example/users/43');

    const outage = await exchange(client, 'DELETE http://api.example/flaky/a/b HTTP/1.1\r\nHost: api.example\r\n\r\n');
    t.is(outage.status, 503, 'a route without a method answers any method; ** crosses path segments');
    t.is(header(outage, 'retry-after'), '1');
    t.is(outage.body, 'mocked outage\n');

    const again = await exchange(client, get(origin.port, '/after-mocks'));
    t.is(again.body, 'origin GET /after-mocks');
    t.deepEqual(
      origin.requests.map((request) => `${request.connection} ${request.method} ${request.target}`),
      ['1 GET /not-mocked', '1 GET /after-mocks'],
      'only unmatched requests reached the origin, with no byte of a mocked request body',
    );
    t.false(client.reader.isEnded, 'the client connection stayed open throughout');

    t.true(await pollUntil(() => logger.lines.length >= 6, 120), JSON.stringify(logger.lines));
    const userLine = logger.lines.find((line) => line.includes('GET http://api.example/users/42 '));
    t.regex(userLine ?? '', / 200 in=\d+ out=\d+ \d+ms by=mock-responder$/);
    const forwardedLine = logger.lines.find((line) => line.includes('/not-mocked'));
    t.regex(forwardedLine ?? '', / 200 in=\d+ out=\d+ \d+ms$/, 'a forwarded request names no plugin');
    t.regex(logger.lines.find((line) => line.includes('/flaky/')) ?? '', / 503 .*by=mock-responder$/);
  } finally {
    client.socket.destroy();
    await proxy.close(0);
    await origin.close();
  }
});

test('mock-responder: a method that does not match is forwarded; HEAD is answered by a GET route without the body; CONNECT passes through', async (t) => {
  await withTempDir('mock-responder-', async (dir) => {
    const origin = await startKeepAliveOrigin((request) => ok(`origin ${request.method} ${request.target}`));
    writeFileSync(path.join(dir, 'body.bin'), Buffer.from([0, 1, 2, 255]));
    writeFileSync(
      path.join(dir, 'routes.json'),
      JSON.stringify([
        { method: 'GET', url: `http://127.0.0.1:${origin.port}/mock/**`, headers: { 'X-Mock': ['a', 'b'] }, body: 'mocked' },
        { method: 'get', url: `http://127.0.0.1:${origin.port}/binary`, bodyFile: 'body.bin' },
        { method: 'CONNECT', url: '**', status: 200 }, // never matched: a CONNECT passes through
      ]),
    );
    const services = container.createChildContainer();
    services.registerInstance(Logger, new SilentLogger());
    const proxy = await createProxy({
      container: services,
      port: 0,
      gracePeriodMs: 0,
      baseDir: dir,
      plugins: ['head-parser', 'connect-handler', { name: 'mock-responder', module: MODULE }, 'http-forward', 'upstream-dialer'],
    });
    const { port } = await proxy.listen();
    const client = await openClient(port);
    try {
      const mocked = await exchange(client, get(origin.port, '/mock/deep/path?q=1'));
      t.is(mocked.body, 'mocked');
      t.is(header(mocked, 'x-mock'), 'a, b', 'an array gives the field once per value');
      const head = await exchange(client, `HEAD http://127.0.0.1:${origin.port}/mock/x HTTP/1.1\r\nHost: a\r\n\r\n`);
      t.is(head.status, 200);
      t.is(header(head, 'content-length'), '6');
      t.is(head.rawBody, '');
      const post = await exchange(client, `POST http://127.0.0.1:${origin.port}/mock/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi`);
      t.is(post.body, 'origin POST /mock/x', 'a route for GET does not answer POST');
      const binary = await exchange(client, get(origin.port, '/binary'));
      t.deepEqual(Buffer.from(binary.body, 'latin1'), Buffer.from([0, 1, 2, 255]), 'a lower-case method in the file still matches');
      client.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
      // Read as a HEAD's response: the head alone (what follows a CONNECT's 200 is the tunnel).
      const established = await client.reader.next({ method: 'HEAD' });
      t.is(established.status, 200);
      t.is(established.statusLine, 'HTTP/1.1 200 Connection Established', 'the tunnel reached the origin, not a mock');
      client.socket.write(`GET /through-tunnel HTTP/1.1\r\nHost: a\r\n\r\n`);
      t.is((await client.reader.next()).body, 'origin GET /through-tunnel');
      t.deepEqual(
        origin.requests.map((request) => `${request.method} ${request.target} ${request.body}`),
        ['POST /mock/x hi', 'GET /through-tunnel '],
      );
    } finally {
      client.socket.destroy();
      await proxy.close(0);
      await origin.close();
    }
  });
});

test('a bad routes file stops start-up with ERR_PROXY_CONFIG naming the entry and the field', async (t) => {
  await withTempDir('mock-responder-', async (dir) => {
    const cases: [unknown, RegExp][] = [
      [{ url: 'http://a/*' }, /expected an array of routes/],
      [[{ url: 'http://a/*', status: 101 }], /routes\.json\[0\]\.status: expected an integer 200–999, found 101/],
      [[{ url: 'http://a/*' }, { url: 'http://a/[' }], /routes\.json\[1\]\.url: expected a glob/],
      [[{ url: 'http://a/*', body: 'x', bodyFile: 'y' }], /\[0\]: expected "body" or "bodyFile", found both/],
      [[{ url: 'http://a/*', bodyFile: 'missing.txt' }], /\[0\]\.bodyFile: expected a readable file, found .*missing\.txt failing with ENOENT/],
      [[{ url: 'http://a/*', headers: { 'Bad Name': 'x' } }], /\[0\]: .*field name "Bad Name" is not a token/],
      [[{ url: 'http://a/*', reply: 'x' }], /\[0\]: unknown field "reply"/],
    ];
    for (const [routes, message] of cases) {
      writeFileSync(path.join(dir, 'routes.json'), JSON.stringify(routes));
      const error = await t.throwsAsync(
        createProxy({ port: 0, baseDir: dir, source: 'test', plugins: ['head-parser', { name: 'mock-responder', module: MODULE }] }),
        { instanceOf: ProxyError },
      );
      t.is(error?.code, 'ERR_PROXY_CONFIG');
      t.regex(error?.message ?? '', /^test: plugins\[1\] \("mock-responder"\): cannot construct MockResponderPlugin: routes file /);
      t.regex(error?.message ?? '', message);
    }
  });
});
