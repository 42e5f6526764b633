import 'reflect-metadata';
import net from 'node:net';
import test from 'ava';
import ipaddr from 'ipaddr.js';
import { tap } from 'rxjs';
import { container } from 'tsyringe';
import type { Target } from '../../src/core/context.js';
import { ProxyError } from '../../src/core/errors.js';
import type { Exchange } from '../../src/core/exchange.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { createProxy } from '../../src/proxy.js';
import { DestinationPolicyPlugin, DnsResolver, type DestinationPolicyOptions } from '../../src/plugins/destination-policy.plugin.js';
import { Dialer } from '../../src/core/transport.js';
import { TcpDialer } from '../../src/transports/tcp-dialer.js';
import { connectTo, openTunnel, proxiedRequest, rawExchange, readUntil, startHttpOrigin, startProxy, startRawOrigin } from '../helpers/net.js';

/**
 * Records every target it is asked for. Connects only to loopback: a host name goes to 127.0.0.1
 * (no DNS), any other IP address is refused without a connect.
 */
class RecordingDialer implements Dialer {
  readonly targets: Target[] = [];
  private readonly tcp = new TcpDialer();
  dial(target: Target, signal: AbortSignal) {
    this.targets.push({ ...target });
    if (!net.isIP(target.host)) return this.tcp.dial({ host: '127.0.0.1', port: target.port }, signal);
    if (ipaddr.process(target.host).range() !== 'loopback') {
      return Promise.reject(new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', `test dialer: ${target.host} is not loopback`));
    }
    return this.tcp.dial(target, signal);
  }
}

/** Answers from a fixed table; unknown names fail like getaddrinfo's ENOTFOUND. */
class TableResolver implements DnsResolver {
  readonly asked: string[] = [];
  constructor(private readonly table: Record<string, string[]>) {}
  lookup(host: string): Promise<string[]> {
    this.asked.push(host);
    const found = this.table[host];
    if (!found) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(found);
  }
}

/** A proxy whose chain has destination-policy (then a spy on the exchanges it let through or refused). */
async function start(options: Partial<DestinationPolicyOptions>, resolver?: DnsResolver) {
  const services = container.createChildContainer();
  services.registerInstance(Logger, new SilentLogger());
  const dialer = new RecordingDialer();
  services.registerInstance(Dialer, dialer);
  if (resolver) services.registerInstance(DnsResolver, resolver);
  const exchanges: Exchange[] = [];
  const spy: ProxyPlugin = { name: 'spy', inbound: () => tap((event) => void (event.kind === 'request-head' && exchanges.push(event.exchange))) };
  const proxy = await startProxy({
    container: services,
    plugins: ['head-parser', 'connect-handler', 'http-forward', { name: 'destination-policy', options }, spy, 'upstream-dialer'],
  });
  return { ...proxy, dialer, exchanges };
}

const ok = (_request: unknown, response: import('node:http').ServerResponse) => response.end('reached');

test('denyPrivate refuses 127.0.0.1 and localhost with 403 before any connect', async (t) => {
  const origin = await startHttpOrigin((request, response) => ok(request, response));
  const proxy = await start({ denyPrivate: true });
  try {
    const literal = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/`);
    t.is(literal.status, 403);
    t.is(literal.body.toString().trimEnd(), 'denied: private address 127.0.0.1');
    // localhost goes through the default (system) resolver: 127.0.0.1 or ::1.
    const named = await proxiedRequest(proxy.port, `http://localhost:${origin.port}/`);
    t.is(named.status, 403);
    t.regex(named.body.toString().trimEnd(), /^denied: private address (127\.0\.0\.1|::1)$/);
    const v6 = await proxiedRequest(proxy.port, `http://[::1]:${origin.port}/`);
    t.is(v6.status, 403);
    t.is(v6.body.toString().trimEnd(), 'denied: private address ::1');
    // An IPv4-mapped IPv6 literal is checked as the IPv4 address it is.
    const mapped = await proxiedRequest(proxy.port, `http://[::ffff:127.0.0.1]:${origin.port}/`);
    t.is(mapped.body.toString().trimEnd(), 'denied: private address 127.0.0.1');
    t.is(origin.connections, 0);
    t.deepEqual(proxy.dialer.targets, []);
    t.true(proxy.exchanges.every((exchange) => exchange.answeredBy === 'destination-policy' && exchange.error?.code === 'ERR_PROXY_FORBIDDEN'));
    t.is(proxy.exchanges.length, 4);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('explicit rules come before denyPrivate: an allow with cidrs overrides it, an allow by name alone does not', async (t) => {
  const origin = await startHttpOrigin((request, response) => ok(request, response));
  const resolver = new TableResolver({ 'named.test': ['127.0.0.1'] });
  const proxy = await start(
    {
      denyPrivate: true,
      default: 'deny',
      rules: [
        { action: 'allow', cidrs: ['127.0.0.0/8'], ports: [origin.port] },
        { action: 'allow', hosts: ['named.test'] },
      ],
    },
    resolver,
  );
  try {
    const allowed = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/`);
    t.is(allowed.status, 200);
    t.is(allowed.body.toString().trimEnd(), 'reached');
    // Another port: rule #0 does not match; rule #1 (by name) matches, but the name resolves to
    // loopback and denyPrivate still applies to it.
    const byName = await proxiedRequest(proxy.port, 'http://named.test/');
    t.is(byName.status, 403);
    t.is(byName.body.toString().trimEnd(), 'denied: private address 127.0.0.1');
    t.is(proxy.dialer.targets.length, 1);
    t.is(origin.connections, 1);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('host globs are tried in order, case-insensitively, and the refusal names the rule', async (t) => {
  const origin = await startHttpOrigin((request, response) => response.end(`host ${request.headers.host}`));
  const resolver = new TableResolver({});
  const proxy = await start(
    {
      default: 'deny',
      rules: [
        { action: 'deny', hosts: ['*.blocked.test'] },
        { action: 'allow', hosts: ['api.blocked.test'] }, // shadowed by rule #0
        { action: 'allow', hosts: ['*.Example.TEST', 'exact.test'] },
      ],
    },
    resolver,
  );
  const port = origin.port;
  try {
    const denied = await proxiedRequest(proxy.port, `http://api.blocked.test:${port}/`);
    t.is(denied.status, 403);
    t.is(denied.body.toString().trimEnd(), `api.blocked.test:${port} denied by rule #0`);
    const dotted = await proxiedRequest(proxy.port, `http://API.Blocked.Test.:${port}/`);
    t.is(dotted.body.toString().trimEnd(), `api.blocked.test:${port} denied by rule #0`);
    const byDefault = await proxiedRequest(proxy.port, `http://example.test:${port}/`);
    t.is(byDefault.status, 403);
    t.is(byDefault.body.toString().trimEnd(), `example.test:${port} denied by default policy`);
    const allowed = await proxiedRequest(proxy.port, `http://www.EXAMPLE.test:${port}/`);
    t.is(allowed.status, 200);
    t.is(allowed.body.toString().trimEnd(), `host www.EXAMPLE.test:${port}`);
    const exact = await proxiedRequest(proxy.port, `http://exact.test:${port}/`);
    t.is(exact.status, 200);
    // Only host names and ports in the rules: nothing is resolved, the dialer gets the name.
    t.deepEqual(resolver.asked, []);
    t.deepEqual(
      proxy.dialer.targets.map((target) => target.host),
      ['www.EXAMPLE.test', 'exact.test'],
    );
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a ports rule matches the target port, and a rule matches only when all its criteria do', async (t) => {
  const origin = await startHttpOrigin((request, response) => ok(request, response));
  const other = await startHttpOrigin((request, response) => ok(request, response));
  const proxy = await start({
    rules: [
      { action: 'deny', hosts: ['*.test'], ports: [other.port] },
      { action: 'deny', ports: [origin.port] },
    ],
  });
  try {
    const denied = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/`);
    t.is(denied.status, 403);
    t.is(denied.body.toString().trimEnd(), `127.0.0.1:${origin.port} denied by rule #1`);
    const both = await proxiedRequest(proxy.port, `http://a.test:${other.port}/`);
    t.is(both.body.toString().trimEnd(), `a.test:${other.port} denied by rule #0`);
    // Rule #0 needs a *.test host: an IP literal on that port passes (default allow).
    const literal = await proxiedRequest(proxy.port, `http://127.0.0.1:${other.port}/`);
    t.is(literal.status, 200);
    t.is(origin.connections, 0);
    t.is(other.connections, 1);
  } finally {
    await proxy.close();
    await origin.close();
    await other.close();
  }
});

test('on a kept-alive connection a repeated destination reuses its decision, and any other one is checked again', async (t) => {
  const origin = await startHttpOrigin((request, response) => ok(request, response));
  const other = await startHttpOrigin((request, response) => ok(request, response));
  const proxy = await start({ rules: [{ action: 'deny', ports: [other.port] }], connectPorts: [443] });
  const get = (port: number, host = '127.0.0.1') => `GET http://${host}:${port}/ HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`;
  const answered = (text: string) => /\r\n\r\n(reached|.*\n)$/.test(text);
  // A refusal closes the connection, so each connection ends with one.
  const first = await connectTo(proxy.port);
  const second = await connectTo(proxy.port);
  try {
    for (const [request, expected] of [
      [get(origin.port), /^HTTP\/1\.1 200 /],
      [get(origin.port), /^HTTP\/1\.1 200 /],
      [get(origin.port, 'localhost'), /^HTTP\/1\.1 200 /],
      [get(other.port), /^HTTP\/1\.1 403 [^]*denied by rule #0\n$/],
    ] as const) {
      first.write(request);
      t.regex(await readUntil(first, answered), expected, request);
    }
    // The same host and port as an allowed GET, now as CONNECT: connectPorts applies.
    second.write(get(origin.port));
    t.regex(await readUntil(second, answered), /^HTTP\/1\.1 200 /);
    second.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
    t.regex(await readUntil(second, answered), /^HTTP\/1\.1 403 [^]*is not allowed\n$/);
    t.is(other.connections, 0);
  } finally {
    first.destroy();
    second.destroy();
    await proxy.close();
    await origin.close();
    await other.close();
  }
});

test('CONNECT is refused outside connectPorts and tunnels to an allowed port', async (t) => {
  let accepted = 0;
  const origin = await startRawOrigin((socket) => {
    accepted++;
    socket.pipe(socket);
  });
  const strict = await start({});
  const open = await start({ connectPorts: [origin.port], denyPrivate: true, default: 'deny', rules: [{ action: 'allow', cidrs: ['127.0.0.0/8'] }] });
  try {
    const refused = await rawExchange(strict.port, `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`, { end: true });
    t.regex(refused, /^HTTP\/1\.1 403 Forbidden\r\n/);
    t.true(refused.endsWith(`\r\n\r\nCONNECT to port ${origin.port} is not allowed\n`));
    t.is(accepted, 0);
    t.deepEqual(strict.dialer.targets, []);

    const tunnel = await openTunnel(open.port, `127.0.0.1:${origin.port}`);
    try {
      t.is(tunnel.head, 'HTTP/1.1 200 Connection Established\r\n\r\n');
      tunnel.socket.write('ping');
      t.is(await readUntil(tunnel.socket, (text) => text.length >= 4), 'ping');
    } finally {
      tunnel.socket.destroy();
    }
    t.is(accepted, 1);
  } finally {
    await strict.close();
    await open.close();
    await origin.close();
  }
});

test('DNS rebinding: a name resolving to a private address is refused before any connect', async (t) => {
  const origin = await startHttpOrigin((request, response) => ok(request, response));
  const resolver = new TableResolver({ 'rebind.test': ['127.0.0.1'], 'ten.test': ['10.1.2.3'], 'meta.test': ['169.254.169.254'] });
  const proxy = await start({ denyPrivate: true }, resolver);
  try {
    const rebind = await proxiedRequest(proxy.port, `http://rebind.test:${origin.port}/`);
    t.is(rebind.status, 403);
    t.is(rebind.body.toString().trimEnd(), 'denied: private address 127.0.0.1');
    const ten = await proxiedRequest(proxy.port, 'http://ten.test/');
    t.is(ten.status, 403);
    t.is(ten.body.toString().trimEnd(), 'denied: private address 10.1.2.3');
    const meta = await proxiedRequest(proxy.port, 'http://meta.test/latest/meta-data/');
    t.is(meta.body.toString().trimEnd(), 'denied: private address 169.254.169.254');
    const tunnel = await openTunnel(proxy.port, 'ten.test:443');
    try {
      t.regex(tunnel.head, /^HTTP\/1\.1 403 Forbidden\r\n/);
    } finally {
      tunnel.socket.destroy();
    }
    t.deepEqual(resolver.asked, ['rebind.test', 'ten.test', 'meta.test', 'ten.test']);
    t.deepEqual(proxy.dialer.targets, []);
    t.is(origin.connections, 0);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('pinning: the dialer gets the address that was checked, the origin still sees the name', async (t) => {
  const origin = await startHttpOrigin((request, response) => response.end(`host ${request.headers.host}`));
  // Two addresses: 10.1.2.3 is refused (default deny), 127.0.0.1 passes and is the one dialled.
  const resolver = new TableResolver({ 'pinned.test': ['127.0.0.1'], 'multi.test': ['10.1.2.3', '127.0.0.1'] });
  const proxy = await start({ denyPrivate: true, default: 'deny', rules: [{ action: 'allow', cidrs: ['127.0.0.0/8'] }] }, resolver);
  try {
    const pinned = await proxiedRequest(proxy.port, `http://pinned.test:${origin.port}/`);
    t.is(pinned.status, 200);
    t.is(pinned.body.toString().trimEnd(), `host pinned.test:${origin.port}`);
    const multi = await proxiedRequest(proxy.port, `http://multi.test:${origin.port}/`);
    t.is(multi.body.toString().trimEnd(), `host multi.test:${origin.port}`);
    // Both exchanges were pinned; the second reused the first's pooled connection (same address).
    t.deepEqual(
      proxy.exchanges.map((exchange) => exchange.target),
      [
        { host: '127.0.0.1', port: origin.port },
        { host: '127.0.0.1', port: origin.port },
      ],
    );
    t.deepEqual(proxy.dialer.targets, [{ host: '127.0.0.1', port: origin.port }]);
    const tunnelOrigin = await startRawOrigin((socket) => socket.end('tunnelled'));
    const tunnels = await start({ connectPorts: [tunnelOrigin.port], default: 'deny', rules: [{ action: 'allow', cidrs: ['127.0.0.1'] }] }, resolver);
    try {
      const socket = await connectTo(tunnels.port, `CONNECT pinned.test:${tunnelOrigin.port} HTTP/1.1\r\nHost: pinned.test:${tunnelOrigin.port}\r\n\r\n`);
      try {
        const text = await readUntil(socket, (received) => received.endsWith('tunnelled'));
        t.is(text, 'HTTP/1.1 200 Connection Established\r\n\r\ntunnelled');
      } finally {
        socket.destroy();
      }
      t.deepEqual(tunnels.dialer.targets, [{ host: '127.0.0.1', port: tunnelOrigin.port }]);
    } finally {
      await tunnels.close();
      await tunnelOrigin.close();
    }
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('pipelined requests wait for the lookup in turn, reuse its decision, and are answered in order', async (t) => {
  const origin = await startHttpOrigin((request, response) => response.end(`path ${request.url}`));
  const resolver = new TableResolver({ 'pinned.test': ['127.0.0.1'] });
  const proxy = await start({ rules: [{ action: 'allow', cidrs: ['127.0.0.0/8'] }], default: 'deny' }, resolver);
  const socket = await connectTo(proxy.port);
  try {
    const url = (path: string) => `GET http://pinned.test:${origin.port}${path} HTTP/1.1\r\nHost: pinned.test:${origin.port}\r\n\r\n`;
    socket.write(url('/one') + url('/two') + url('/three'));
    const text = await readUntil(socket, (received) => received.includes('path /three'));
    const order = [...text.matchAll(/path (\/(?:one|two|three))/g)].map((match) => match[1]);
    t.deepEqual(order, ['/one', '/two', '/three']);
    t.is(resolver.asked.length, 1, 'the connection reuses the decision (and pinned address) for the same destination');
  } finally {
    socket.destroy();
    await proxy.close();
    await origin.close();
  }
});

test('a name that does not resolve is answered 502 by the policy', async (t) => {
  const proxy = await start({ denyPrivate: true }, new TableResolver({ 'empty.test': [], 'junk.test': ['not-an-address'] }));
  try {
    for (const name of ['nowhere.test', 'empty.test', 'junk.test']) {
      const response = await proxiedRequest(proxy.port, `http://${name}/`);
      t.is(response.status, 502);
      t.is(response.body.toString().trimEnd(), `host not found: ${name}`);
    }
    t.true(proxy.exchanges.every((exchange) => exchange.answeredBy === 'destination-policy' && exchange.error?.code === 'ERR_PROXY_UPSTREAM_CONNECT'));
    t.deepEqual(proxy.dialer.targets, []);
  } finally {
    await proxy.close();
  }
});

test('a bad CIDR or glob fails start-up naming the entry, the rule and the field', async (t) => {
  const services = container.createChildContainer();
  services.registerInstance(Logger, new SilentLogger());
  const chain = (options: unknown) => ['head-parser', 'http-forward', { name: 'destination-policy', options }, 'upstream-dialer'];
  const cases: [unknown, RegExp][] = [
    [
      { rules: [{ action: 'allow' }, { action: 'deny', cidrs: ['10.0.0.0/8', '10.0.0.0/33'] }] },
      /plugins\[2\] \("destination-policy"\).*rules\[1\]\.cidrs\[1\]: expected an IPv4 or IPv6 CIDR like 10\.0\.0\.0\/8, found "10\.0\.0\.0\/33"/,
    ],
    [{ rules: [{ action: 'deny', cidrs: ['0x7f.1/8'] }] }, /rules\[0\]\.cidrs\[0\]: expected an IPv4 or IPv6 CIDR/],
    [{ rules: [{ action: 'deny', cidrs: ['10.0.0.0/8/8'] }] }, /rules\[0\]\.cidrs\[0\]: .*malformed prefix length/],
    [
      { rules: [{ action: 'deny', hosts: ['ok.test', 'bad/glob'] }] },
      /rules\[0\]\.hosts\[1\]: expected a host name glob like \*\.example\.com, found "bad\/glob"/,
    ],
    [{ rules: [{ action: 'deny', hosts: ['[unclosed'] }] }, /rules\[0\]\.hosts\[0\]: expected a host name glob/],
    [{ rules: [{ hosts: ['a.test'] }] }, /options\.rules\[0\]|rules\/0|action/],
    [{ default: 'maybe' }, /options\.default: expected one of "allow", "deny"/],
  ];
  for (const [options, message] of cases) {
    const error = await t.throwsAsync(createProxy({ container: services, port: 0, plugins: chain(options) }), { instanceOf: ProxyError });
    t.is(error?.code, 'ERR_PROXY_CONFIG');
    t.regex(error?.message ?? '', message);
  }
});

test('the decision table: IPv6 and IPv4-mapped ranges, metadata addresses, single addresses', (t) => {
  const policy = (options: Partial<DestinationPolicyOptions>) =>
    new DestinationPolicyPlugin({ rules: [], default: 'allow', denyPrivate: false, connectPorts: [443], ...options });
  const decide = (plugin: DestinationPolicyPlugin, address: string, host = 'h.test', port = 80) => {
    const verdict = plugin.decide(host, port, ipaddr.process(address));
    return verdict === 'address' ? verdict : verdict.allow ? 'allow' : verdict.message;
  };
  const shield = policy({ denyPrivate: true });
  for (const address of [
    '127.0.0.2',
    '10.9.9.9',
    '172.31.0.1',
    '192.168.0.1',
    '169.254.169.254',
    '100.100.100.200',
    '100.64.0.1',
    '0.0.0.0',
    '::',
    '::1',
    'fe80::1',
    'fc00::1',
    'fd00:ec2::254',
    '::ffff:192.168.1.1',
  ]) {
    t.regex(decide(shield, address), /^denied: private address /, address);
  }
  for (const address of ['8.8.8.8', '172.32.0.1', '2001:db8::1', '100.128.0.1']) t.is(decide(shield, address), 'allow', address);
  t.is(shield.decide('h.test', 80, undefined), 'address');

  const v6 = policy({ default: 'deny', rules: [{ action: 'allow', cidrs: ['2001:db8::/32', '::ffff:10.0.0.0/104', '192.0.2.7'] }] });
  t.is(decide(v6, '2001:db8:1::5'), 'allow');
  t.is(decide(v6, '10.1.1.1'), 'allow'); // IPv4 against the IPv4-mapped range
  t.is(decide(v6, '::ffff:10.1.1.1'), 'allow');
  t.is(decide(v6, '192.0.2.7'), 'allow');
  t.is(decide(v6, '192.0.2.8'), 'h.test:80 denied by default policy');
  t.is(decide(v6, '2001:db9::1', '2001:db9::1', 8080), '[2001:db9::1]:8080 denied by default policy');
  const v4range = policy({ rules: [{ action: 'deny', cidrs: ['10.0.0.0/8'] }] });
  t.is(decide(v4range, '2001:db8::1'), 'allow'); // an IPv6 address never matches an IPv4 range
});

test('listed before the routing plugins, it fails closed: every request is refused 500 and nothing is dialled', async (t) => {
  const services = container.createChildContainer();
  services.registerInstance(Logger, new SilentLogger());
  const dialer = new RecordingDialer();
  services.registerInstance(Dialer, dialer);
  const origin = await startHttpOrigin((_request, response) => response.end('reached'));
  const proxy = await startProxy({
    container: services,
    plugins: ['head-parser', { name: 'destination-policy', options: {} }, 'connect-handler', 'http-forward', 'upstream-dialer'],
  });
  try {
    const response = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/`);
    t.is(response.status, 500);
    t.deepEqual(dialer.targets, [], 'an unchecked request would have gone out');
  } finally {
    await proxy.close();
    await origin.close();
  }
});
