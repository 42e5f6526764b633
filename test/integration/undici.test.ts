// undici's ProxyAgent (what Node's fetch uses behind a proxy) against the default chain. Its CONNECT
// carries `connection: close`; a CONNECT that succeeded must still become a tunnel.
import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';
import test from 'ava';
import { fetch, ProxyAgent } from 'undici';
import { startHttpOrigin, startHttpsOrigin, startProxy, TLS } from '../helpers/net.js';

/** Answers GET with `hello <path>`, POST with the SHA-256 (hex) of the body it received. */
const handler: http.RequestListener = (request, response) => {
  if (request.method === 'POST') {
    const hash = createHash('sha256');
    let length = 0;
    request.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    request.on('end', () => response.end(`${length} ${hash.digest('hex')}`));
    return;
  }
  request.resume();
  request.on('end', () => response.end(`hello ${request.url}`));
};

/** A ProxyAgent through `proxyPort` that trusts the test certificate for origins. */
const agentFor = (proxyPort: number, options: { proxyTunnel?: boolean } = {}) =>
  new ProxyAgent({ uri: `http://127.0.0.1:${proxyPort}`, requestTls: { ca: TLS.cert }, ...options });

test('undici fetch: GET over HTTPS through the proxy answers 200 and the body', async (t) => {
  const origin = await startHttpsOrigin(handler);
  const proxy = await startProxy();
  const agent = agentFor(proxy.port);
  try {
    const response = await fetch(`https://127.0.0.1:${origin.port}/secure?x=1`, { dispatcher: agent });
    t.is(response.status, 200);
    t.is(await response.text(), 'hello /secure?x=1');
  } finally {
    await agent.close();
    await origin.close();
    await proxy.close();
  }
});

test('undici fetch: a 200 KB POST over HTTPS reaches the origin intact', async (t) => {
  const origin = await startHttpsOrigin(handler);
  const proxy = await startProxy();
  const agent = agentFor(proxy.port);
  const body = randomBytes(200 * 1024);
  try {
    const response = await fetch(`https://127.0.0.1:${origin.port}/upload`, { method: 'POST', body, dispatcher: agent });
    t.is(response.status, 200);
    t.is(await response.text(), `${body.length} ${createHash('sha256').update(body).digest('hex')}`);
  } finally {
    await agent.close();
    await origin.close();
    await proxy.close();
  }
});

// ProxyAgent tunnels plain HTTP too by default; with proxyTunnel: false it sends absolute-form.
for (const proxyTunnel of [true, false]) {
  test(`undici fetch: a plain-HTTP GET through the proxy (proxyTunnel: ${proxyTunnel})`, async (t) => {
    const origin = await startHttpOrigin(handler);
    const proxy = await startProxy();
    const agent = agentFor(proxy.port, { proxyTunnel });
    try {
      const response = await fetch(`http://127.0.0.1:${origin.port}/plain`, { dispatcher: agent });
      t.is(response.status, 200);
      t.is(await response.text(), 'hello /plain');
      t.is(origin.connections, 1);
    } finally {
      await agent.close();
      await origin.close();
      await proxy.close();
    }
  });
}

test('undici fetch: several requests on one ProxyAgent, HTTPS and HTTP, one after another and at once', async (t) => {
  const secure = await startHttpsOrigin(handler);
  const plain = await startHttpOrigin(handler);
  const proxy = await startProxy();
  const agent = agentFor(proxy.port);
  try {
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`https://127.0.0.1:${secure.port}/seq/${i}`, { dispatcher: agent });
      t.is(await response.text(), `hello /seq/${i}`);
      const other = await fetch(`http://127.0.0.1:${plain.port}/seq/${i}`, { dispatcher: agent });
      t.is(await other.text(), `hello /seq/${i}`);
    }
    // Sequential requests reuse the tunnel: one origin connection for five HTTP requests.
    t.is(plain.connections, 1);
    const bodies = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const url = i % 2 ? `http://127.0.0.1:${plain.port}/par/${i}` : `https://127.0.0.1:${secure.port}/par/${i}`;
        const response = await fetch(url, { dispatcher: agent });
        return `${response.status} ${await response.text()}`;
      }),
    );
    t.deepEqual(
      bodies,
      Array.from({ length: 8 }, (_, i) => `200 hello /par/${i}`),
    );
  } finally {
    await agent.close();
    await secure.close();
    await plain.close();
    await proxy.close();
  }
});
