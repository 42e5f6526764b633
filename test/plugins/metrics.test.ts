import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { Registry } from 'prom-client';
import { map } from 'rxjs';
import { container } from 'tsyringe';
import { createAdminServer, type AdminServer } from '../../src/admin.js';
import { ProxyError } from '../../src/core/errors.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { createStats, ProxyStats } from '../../src/core/stats.js';
import { MetricsPlugin, MetricsRegistry } from '../../src/plugins/metrics.plugin.js';
import { createProxy } from '../../src/proxy.js';
import { closedPort, connectTo, openTunnel, proxiedRequest, readUntil, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';
import { pollUntil } from '../helpers/wire.js';

/** Refuses every request whose URL ends in /forbidden, as a policy plugin would. */
const testPolicy: ProxyPlugin = {
  name: 'test-policy',
  inbound: () =>
    map((event) => {
      if (event.kind === 'request-head' && event.exchange.request.target.endsWith('/forbidden')) {
        event.exchange.error = new ProxyError('ERR_PROXY_FORBIDDEN', 'forbidden by test-policy');
        event.exchange.answeredBy = 'test-policy';
      }
      return event;
    }),
};

const CHAIN = ['head-parser', 'connect-handler', 'http-forward', testPolicy, 'upstream-dialer', 'byte-counter', 'metrics'];

/** A proxy with `plugins` recording into a fresh registry, and an admin server on port 0 serving it. */
async function startMetered(plugins: unknown[] = CHAIN) {
  const registry = new Registry();
  const services = container.createChildContainer();
  services.registerInstance(MetricsRegistry, registry);
  const proxy = await startProxy({ container: withSilentLogger(services), plugins: plugins as never });
  const admin = createAdminServer(registry, { host: '127.0.0.1', port: 0 });
  const { port: adminPort } = await admin.listen();
  return {
    registry,
    proxy,
    admin,
    adminPort,
    close: async () => {
      await admin.close();
      await proxy.close();
    },
  };
}

function withSilentLogger(services: ReturnType<typeof container.createChildContainer>) {
  services.registerInstance(Logger, new SilentLogger());
  return services;
}

/** GET (or another method) on the admin server; resolves status, headers and body. */
function adminRequest(port: number, path: string, method = 'GET') {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method, agent: false });
    request.on('error', reject);
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.end();
  });
}

/** The value of one sample in a Prometheus text exposition; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(',');
  const prefix = wanted ? `${name}{${wanted}} ` : `${name} `;
  const line = text.split('\n').find((candidate) => candidate.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

/** Scrapes until `predicate` holds on the exposition (bounded: 100 tries, 20 ms apart). */
async function scrapeUntil(port: number, predicate: (text: string) => boolean): Promise<string> {
  let text = '';
  for (let attempt = 0; attempt < 100; attempt++) {
    text = (await adminRequest(port, '/metrics')).body;
    if (predicate(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return text;
}

test('requests, bytes, timings, errors and refusals are counted and served on /metrics', async (t) => {
  const origin = await startHttpOrigin((_request, response) => response.end('hello from the origin'));
  const metered = await startMetered();
  try {
    const base = `http://127.0.0.1:${origin.port}`;
    for (const path of ['/one', '/two']) t.is((await proxiedRequest(metered.proxy.port, `${base}${path}`)).status, 200);
    const refused = await proxiedRequest(metered.proxy.port, `${base}/forbidden`);
    t.is(refused.status, 403);
    const unreachable = await proxiedRequest(metered.proxy.port, `http://127.0.0.1:${await closedPort()}/`);
    t.is(unreachable.status, 502);

    const scrape = await adminRequest(metered.adminPort, '/metrics');
    t.is(scrape.status, 200);
    t.is(scrape.headers['content-type'], metered.registry.contentType);
    const text = scrape.body;
    t.is(sample(text, 'proxyline_requests_total', { status_class: '2xx' }), 2);
    t.is(sample(text, 'proxyline_requests_total', { status_class: '4xx' }), 1);
    t.is(sample(text, 'proxyline_requests_total', { status_class: '5xx' }), 1);
    t.true(sample(text, 'proxyline_bytes_total', { direction: 'inbound' })! > 0, text);
    // At least the two bodies of the origin went to the client.
    t.true(sample(text, 'proxyline_bytes_total', { direction: 'outbound' })! > 2 * 'hello from the origin'.length, text);
    t.true(sample(text, 'proxyline_upstream_connect_seconds_count')! >= 1, text);
    t.is(sample(text, 'proxyline_request_duration_seconds_count'), 4);
    t.is(sample(text, 'proxyline_errors_total', { code: 'ERR_PROXY_FORBIDDEN' }), 1);
    t.is(sample(text, 'proxyline_errors_total', { code: 'ERR_PROXY_UPSTREAM_CONNECT' }), 1);
    t.is(sample(text, 'proxyline_rejections_total', { plugin: 'test-policy' }), 1);
    t.true(sample(text, 'proxyline_connections_total')! >= 1, text);

    // Every client closed: the gauge comes back to 0 once the proxy saw the closes.
    const settled = await scrapeUntil(metered.adminPort, (latest) => sample(latest, 'proxyline_connections_open') === 0);
    t.is(sample(settled, 'proxyline_connections_open'), 0);
    t.is(sample(settled, 'proxyline_connections_total'), 4);
  } finally {
    await metered.close();
    await origin.close();
  }
});

test('a request on a pooled upstream adds no connect time; a kept-alive client is one open connection', async (t) => {
  const origin = await startHttpOrigin((_request, response) => response.end('ok'));
  const metered = await startMetered();
  const client = await connectTo(metered.proxy.port);
  try {
    const request = (path: string) => `GET http://127.0.0.1:${origin.port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`;
    client.write(request('/first'));
    await readUntil(client, (text) => text.endsWith('\r\n\r\nok'));
    // Let the first response's upstream reach the pool before the second request asks for one.
    const pooled = await scrapeUntil(metered.adminPort, (text) => sample(text, 'proxyline_requests_total', { status_class: '2xx' }) === 1);
    t.is(sample(pooled, 'proxyline_connections_open'), 1);
    client.write(request('/second'));
    await readUntil(client, (text) => text.endsWith('\r\n\r\nok'));
    const text = await scrapeUntil(metered.adminPort, (latest) => sample(latest, 'proxyline_requests_total', { status_class: '2xx' }) === 2);
    t.is(sample(text, 'proxyline_requests_total', { status_class: '2xx' }), 2);
    t.is(origin.connections, 1, 'the second request reused the pooled upstream');
    t.is(sample(text, 'proxyline_upstream_connect_seconds_count'), 1);
    t.is(sample(text, 'proxyline_request_duration_seconds_count'), 2);
    t.is(sample(text, 'proxyline_connections_open'), 1);
  } finally {
    client.destroy();
    await metered.close();
    await origin.close();
  }
});

test('a tunnel is counted when it closes; its bytes both ways show at every scrape while it is open', async (t) => {
  const echo = await startRawOrigin((socket) => socket.pipe(socket));
  const metered = await startMetered();
  try {
    const { socket, head } = await openTunnel(metered.proxy.port, `127.0.0.1:${echo.port}`);
    t.regex(head, /^HTTP\/1\.1 200 /);
    socket.write('ping through the tunnel');
    await readUntil(socket, (text) => text.endsWith('ping through the tunnel'));
    const open = await adminRequest(metered.adminPort, '/metrics');
    t.is(sample(open.body, 'proxyline_requests_total', { status_class: '2xx' }), undefined, 'not counted while open');
    const inboundBefore = sample(open.body, 'proxyline_bytes_total', { direction: 'inbound' })!;
    const outboundBefore = sample(open.body, 'proxyline_bytes_total', { direction: 'outbound' })!;
    t.true(inboundBefore >= 'ping through the tunnel'.length, open.body);
    t.true(outboundBefore >= 'ping through the tunnel'.length, open.body);
    socket.write('and again');
    await readUntil(socket, (text) => text.endsWith('and again'));
    const later = await adminRequest(metered.adminPort, '/metrics');
    t.is(sample(later.body, 'proxyline_bytes_total', { direction: 'inbound' }), inboundBefore + 'and again'.length, 'the new bytes only, once');
    t.is(sample(later.body, 'proxyline_bytes_total', { direction: 'outbound' }), outboundBefore + 'and again'.length);
    socket.destroy();
    const text = await scrapeUntil(metered.adminPort, (latest) => sample(latest, 'proxyline_connections_open') === 0);
    t.is(sample(text, 'proxyline_requests_total', { status_class: '2xx' }), 1);
    t.is(sample(text, 'proxyline_upstream_connect_seconds_count'), 1);
    t.is(sample(text, 'proxyline_bytes_total', { direction: 'inbound' }), inboundBefore + 'and again'.length, 'nothing counted twice at close');
    t.is(sample(text, 'proxyline_bytes_total', { direction: 'outbound' }), outboundBefore + 'and again'.length);
  } finally {
    await metered.close();
    await echo.close();
  }
});

test('the admin server answers /healthz, 404 elsewhere and 405 for other methods', async (t) => {
  const admin: AdminServer = createAdminServer(new Registry(), { port: 0 });
  t.is(admin.address(), undefined);
  const { host, port } = await admin.listen();
  try {
    t.is(host, '127.0.0.1');
    t.deepEqual(admin.address(), { host, port });
    const health = await adminRequest(port, '/healthz');
    t.is(health.status, 200);
    t.is(health.body, 'ok\n');
    t.is((await adminRequest(port, '/nope')).status, 404);
    t.is((await adminRequest(port, '/')).status, 404);
    t.is((await adminRequest(port, '/metrics?format=x')).status, 200);
    const post = await adminRequest(port, '/metrics', 'POST');
    t.is(post.status, 405);
    t.is(post.headers.allow, 'GET, HEAD');
    const headOnly = await adminRequest(port, '/healthz', 'HEAD');
    t.is(headOnly.status, 200);
    t.is(headOnly.body, '');
  } finally {
    await admin.close();
  }
  await t.throwsAsync(adminRequest(port, '/healthz'), undefined, 'closed: nothing listens any more');
  await admin.close(); // twice is harmless
});

test('a scrape that fails to collect is answered 500', async (t) => {
  const registry = new Registry();
  registry.registerMetric({
    name: 'broken',
    get: () => Promise.reject(new Error('collector broke')),
    reset: () => {},
    get help() {
      return 'x';
    },
  } as never);
  const admin = createAdminServer(registry, { port: 0 });
  const { port } = await admin.listen();
  try {
    const response = await adminRequest(port, '/metrics');
    t.is(response.status, 500);
    t.regex(response.body, /collector broke/);
  } finally {
    await admin.close();
  }
});

test('an admin port in use rejects listen()', async (t) => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => blocker.once('listening', resolve));
  try {
    const { port } = blocker.address() as net.AddressInfo;
    await t.throwsAsync(createAdminServer(new Registry(), { port }).listen(), { message: /EADDRINUSE/ });
  } finally {
    blocker.close();
  }
});

test('metrics without byte-counter earlier in the chain stops start-up, naming it', async (t) => {
  const error = await t.throwsAsync(
    createProxy({ container: withSilentLogger(container.createChildContainer()), port: 0, plugins: ['metrics', 'byte-counter'] }),
  );
  t.is((error as ProxyError).code, 'ERR_PROXY_CONFIG');
  t.regex(error.message, /"metrics".*expected "byte-counter" earlier in the chain, found it at plugins\[1\]/);
});

test('createProxy gives the plugin a registry of its own, and two proxies can share one', async (t) => {
  // No MetricsRegistry registered: createProxy registers a new one, so the chain builds.
  const alone = await createProxy({ container: withSilentLogger(container.createChildContainer()), port: 0, plugins: ['byte-counter', 'metrics'] });
  await alone.close(0);

  const registry = new Registry();
  const services = withSilentLogger(container.createChildContainer());
  services.registerInstance(MetricsRegistry, registry);
  const first = await createProxy({ container: services, port: 0, plugins: ['head-parser', 'http-forward', 'upstream-dialer', 'byte-counter', MetricsPlugin] });
  const second = await createProxy({ container: services, port: 0, plugins: ['head-parser', 'http-forward', 'upstream-dialer', 'byte-counter', 'metrics'] });
  const ports = [(await first.listen()).port, (await second.listen()).port];
  try {
    for (const port of ports) {
      const socket = await connectTo(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await readUntil(socket, (text) => text.includes('\r\n\r\n'));
      socket.destroy();
    }
    const text = await registry.metrics();
    t.is(sample(text, 'proxyline_connections_total'), 2);
    // An origin-form request is refused with 400 by http-forward.
    t.is(sample(text, 'proxyline_requests_total', { status_class: '4xx' }), 2);
    t.is(sample(text, 'proxyline_errors_total', { code: 'ERR_PROXY_BAD_REQUEST' }), 2);
  } finally {
    await first.close(0);
    await second.close(0);
  }
});

test('the ProxyStats counters are served as proxyline_*_total, read at each scrape and summed over the proxies sharing the registry', async (t) => {
  const registry = new Registry();
  const services = withSilentLogger(container.createChildContainer());
  services.registerInstance(MetricsRegistry, registry);
  services.registerInstance(ProxyStats, createStats());
  const stats = services.resolve(ProxyStats);
  const proxy = await startProxy({ container: services, plugins: CHAIN, maxConnections: 1 });
  // A second proxy on the same registry, with counters of its own.
  const others = withSilentLogger(container.createChildContainer());
  others.registerInstance(MetricsRegistry, registry);
  others.registerInstance(ProxyStats, createStats());
  const second = await createProxy({ container: others, port: 0, plugins: ['byte-counter', 'metrics'] });
  const admin = createAdminServer(registry, { host: '127.0.0.1', port: 0 });
  const { port: adminPort } = await admin.listen();
  const held = await connectTo(proxy.port);
  let refused: net.Socket | undefined;
  try {
    // A real refusal: the second connection is over maxConnections.
    t.true(await pollUntil(() => proxy.server.connections === 1, 120));
    refused = await connectTo(proxy.port);
    t.true(await pollUntil(() => stats.connectionsRefused === 1, 120));
    stats.acceptErrors = 2;
    stats.dialNoResources = 3;
    stats.logDropped = 4;
    stats.captureDropped = 6;
    stats.tlsHandshakeErrors = 7;
    stats.rateLimitStoreErrors = 8;
    stats.socksHandshakeErrors = 9;
    const names = {
      connectionsRefused: 'proxyline_connections_refused_total',
      acceptErrors: 'proxyline_accept_errors_total',
      dialNoResources: 'proxyline_dial_no_resources_total',
      logDropped: 'proxyline_log_dropped_total',
      captureDropped: 'proxyline_capture_dropped_total',
      tlsHandshakeErrors: 'proxyline_tls_handshake_errors_total',
      rateLimitStoreErrors: 'proxyline_rate_limit_store_errors_total',
      socksHandshakeErrors: 'proxyline_socks_handshake_errors_total',
    } as const;
    const first = (await adminRequest(adminPort, '/metrics')).body;
    for (const [key, name] of Object.entries(names)) {
      t.is(sample(first, name), stats[key as keyof typeof names], name);
      t.regex(first, new RegExp(`^# TYPE ${name} counter$`, 'm'));
    }
    // Read when scraped: later counts show at the next scrape, both proxies' added up.
    stats.logDropped += 5;
    others.resolve(ProxyStats).logDropped = 10;
    others.resolve(ProxyStats).acceptErrors = 1;
    const later = (await adminRequest(adminPort, '/metrics')).body;
    t.is(sample(later, 'proxyline_log_dropped_total'), 19);
    t.is(sample(later, 'proxyline_accept_errors_total'), 3);
    t.is(sample(later, 'proxyline_connections_refused_total'), 1);
    t.is(sample(later, 'proxyline_dial_no_resources_total'), 3);
  } finally {
    held.destroy();
    refused?.destroy();
    await admin.close();
    await proxy.close();
    await second.close(0);
  }
});
