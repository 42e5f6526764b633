// upstream-dialer's side of routes: the pool keys on (hop, origin), and a real SOCKS5 server (danted).
import 'reflect-metadata';
import test from 'ava';
import { tap } from 'rxjs';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { getHeader } from '../../src/core/http/head.js';
import { parseHop } from '../../src/plugins/parent-proxy-url.js';
import { exchange, withClient } from '../helpers/keep-alive.js';
import { closedPort, connectTo, openTunnel, readUntil, startHttpOrigin, startProxy } from '../helpers/net.js';
import { hasDanted, parentChain, recordingOrigin, startDanted, startHttpParent } from '../helpers/parent-proxy.js';

/** Sets each request's route from its X-Route field (a parent URL, or none: no route), as upstream-proxy would. */
const routeByHeader = (): ProxyPlugin => ({
  name: 'route-by-header',
  inbound: () =>
    tap((event) => {
      if (event.kind !== 'request-head') return;
      const url = getHeader(event.exchange.request.headers, 'x-route');
      if (url !== undefined) event.exchange.route = [parseHop(url, 'x-route')];
    }),
});

test('the pool never hands a connection through one parent to another route for the same origin', async (t) => {
  const origin = await recordingOrigin();
  const [a, b] = [await startHttpParent(), await startHttpParent()];
  const proxy = startProxy({ plugins: ['head-parser', 'connect-handler', 'http-forward', routeByHeader(), 'upstream-dialer'] });
  await withClient(proxy, [a, b, origin], async (client) => {
    const url = `http://127.0.0.1:${origin.port}`;
    const send = (path: string, route?: string) =>
      exchange(client, `GET ${url}${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n${route ? `X-Route: ${route}\r\n` : ''}\r\n`);
    t.is((await send('/a1', `http://127.0.0.1:${a.port}`)).body, 'origin /a1');
    t.is((await send('/b1', `http://127.0.0.1:${b.port}`)).body, 'origin /b1');
    t.is((await send('/d1')).body, 'origin /d1');
    t.is((await send('/a2', `http://127.0.0.1:${a.port}`)).body, 'origin /a2');
    t.is((await send('/b2', `http://u:p@127.0.0.1:${b.port}`)).body, 'origin /b2');
    t.deepEqual(
      a.requests.map((request) => request.url),
      [`${url}/a1`, `${url}/a2`],
    );
    t.deepEqual(
      b.requests.map((request) => request.url),
      [`${url}/b1`, `${url}/b2`],
    );
    // a's connection came back to the pool and served a2; b with other credentials is another route.
    t.is(a.connections, 1);
    t.is(b.connections, 2);
    t.is(origin.seen.length, 5);
  });
});

const dantedTest = hasDanted() ? test.serial : test.skip;
if (!hasDanted()) console.log('upstream-proxy: /usr/sbin/danted is missing (apt install dante-server); the danted test is skipped');

dantedTest('through danted (a real SOCKS5 server): plain HTTP and CONNECT by name, and its refusal answered 502 with the reply', async (t) => {
  const danted = await startDanted();
  if ('failed' in danted) {
    t.log(`skipped: ${danted.failed}`);
    return t.pass();
  }
  const origin = await startHttpOrigin((request, response) => response.end(`danted ${request.url}`));
  const down = await closedPort();
  const proxy = startProxy({ plugins: parentChain({ default: `socks5://127.0.0.1:${danted.port}` }) });
  await withClient(proxy, [origin, danted], async (client, started) => {
    const response = await exchange(client, `GET http://localhost:${origin.port}/plain HTTP/1.1\r\nHost: localhost:${origin.port}\r\n\r\n`);
    t.is(response.body, 'danted /plain');
    const { socket, head } = await openTunnel(started.port, `localhost:${origin.port}`);
    try {
      t.regex(head, /^HTTP\/1\.1 200 /);
      socket.write('GET /tunnel HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      t.regex(await readUntil(socket, (text) => text.includes('danted /tunnel')), /danted \/tunnel/);
    } finally {
      socket.destroy();
    }
    const refused = await connectTo(started.port, `CONNECT 127.0.0.1:${down} HTTP/1.1\r\nHost: 127.0.0.1:${down}\r\n\r\n`);
    const text = await readUntil(refused, (received) => /\(reply \d\)/.test(received)).finally(() => refused.destroy());
    t.regex(text, /^HTTP\/1\.1 502 /);
    t.regex(text, new RegExp(`parent proxy 127\\.0\\.0\\.1:${danted.port} \\(socks5\\) refused: [a-z ]+ \\(reply [1-8]\\)`));
  });
});
