// The HTTPS proxy listener end to end: clients speak TLS to the proxy (curl --proxy https://,
// Chromium --proxy-server=https://, undici's ProxyAgent, a raw Node TLS client), and the same
// pipeline runs inside. The curl and Chromium tests skip, saying why, when the program is missing.
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { tap } from 'rxjs';
import { container } from 'tsyringe';
import type { ProxyEvent } from '../../src/core/events.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import type { PluginSpec } from '../../src/core/registry.js';
import { MetricsRegistry } from '../../src/plugins/metrics-registry.js';
import { DEFAULT_CHAIN } from '../../src/plugins/index.js';
import { findChromium } from '../helpers/chromium.js';
import { runToExit } from '../helpers/cli.js';
import { connectTo, ROOT, startHttpOrigin, startHttpsOrigin, startProxy, startRawOrigin, TLS } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';
import { collect, pollUntil } from '../helpers/wire.js';

const CURL = '/usr/bin/curl';
const CERT_FILE = path.join(ROOT, 'test/fixtures/localhost-cert.pem');
const curlTest = existsSync(CURL) ? test : test.skip;
if (!existsSync(CURL)) console.warn(`https-listener.test: curl tests skipped, no ${CURL} (Debian: apt-get install curl)`);
const CHROMIUM = findChromium();
const chromiumTest = CHROMIUM ? test : test.skip;
if (!CHROMIUM) console.warn('https-listener.test: Chromium test skipped, no Chromium on PATH (Debian: apt-get install chromium)');

/** Answers every request with `hello <path>`. */
const hello: http.RequestListener = (request, response) => {
  request.resume();
  request.on('end', () => response.end(`hello ${request.url}`));
};

/** A plugin that notes every request head it sees (method and target): the pipeline runs inside the TLS connection. */
function headRecorder(): ProxyPlugin & { heads: string[] } {
  const heads: string[] = [];
  return {
    name: 'head-recorder',
    heads,
    inbound: () =>
      tap((event: ProxyEvent) => {
        if (event.kind === 'request-head') heads.push(`${event.head.method} ${event.head.target}`);
      }),
  };
}

/** A proxy speaking TLS on 127.0.0.1:0, with the default chain and a head recorder right after head-parser (heads as sent). */
async function startTlsProxy(plugins: readonly PluginSpec[] = DEFAULT_CHAIN) {
  const recorder = headRecorder();
  const [parser, ...rest] = plugins;
  const proxy = await startProxy({ tls: TLS, plugins: [parser!, recorder, ...rest] });
  return { ...proxy, heads: recorder.heads };
}

/** Runs a program to its end (killed after 30 s as a safety net); returns its exit code and output. */
function run(command: string, args: string[], env?: NodeJS.ProcessEnv) {
  return runToExit(spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }), 30_000);
}

/** Runs curl with no proxy settings from the environment. */
function curl(args: string[]) {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  return run(CURL, ['--silent', '--show-error', '--noproxy', '', ...args], env);
}

/** A TLS client of the proxy that trusts the test certificate. */
async function tlsClient(port: number): Promise<tls.TLSSocket> {
  // tls.connect passes allowHalfOpen to its socket; @types/node leaves it out of ConnectionOptions.
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: TLS.cert, allowHalfOpen: true } as tls.ConnectionOptions);
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  return socket;
}

curlTest('curl --proxy https://: a plain HTTP request goes through the TLS listener and the pipeline sees it', async (t) => {
  const origin = await startHttpOrigin(hello);
  const proxy = await startTlsProxy();
  try {
    const url = `http://127.0.0.1:${origin.port}/plain?x=1`;
    const result = await curl(['--proxy', `https://127.0.0.1:${proxy.port}`, '--proxy-cacert', CERT_FILE, '--include', url]);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /^HTTP\/1\.1 200 OK\r\n/);
    t.regex(result.stdout, /\r\nVia: 1\.1 proxyline\r\n/i);
    t.true(result.stdout.endsWith('\r\n\r\nhello /plain?x=1'), result.stdout);
    t.deepEqual(proxy.heads, [`GET ${url}`]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

curlTest('curl --proxy https://: HTTPS to an origin through a CONNECT tunnel inside the TLS connection', async (t) => {
  const origin = await startHttpsOrigin(hello);
  const proxy = await startTlsProxy();
  try {
    const result = await curl([
      '--proxy',
      `https://127.0.0.1:${proxy.port}`,
      '--proxy-cacert',
      CERT_FILE,
      '--cacert',
      CERT_FILE,
      `https://localhost:${origin.port}/secure`,
      '--resolve',
      `localhost:${origin.port}:127.0.0.1`,
    ]);
    t.is(result.code, 0, result.stderr);
    t.is(result.stdout, 'hello /secure');
    t.deepEqual(proxy.heads, [`CONNECT localhost:${origin.port}`]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

curlTest('curl --proxy https:// without the proxy CA fails its handshake; the proxy counts it and keeps serving', async (t) => {
  const origin = await startHttpOrigin(hello);
  const proxy = await startTlsProxy();
  try {
    const url = `http://127.0.0.1:${origin.port}/`;
    const refused = await curl(['--proxy', `https://127.0.0.1:${proxy.port}`, url]);
    t.not(refused.code, 0, 'curl does not trust the test certificate');
    t.true(await pollUntil(() => proxy.server.stats.tlsHandshakeErrors === 1, 200), `counted: ${proxy.server.stats.tlsHandshakeErrors}`);
    const served = await curl(['--proxy', `https://127.0.0.1:${proxy.port}`, '--proxy-cacert', CERT_FILE, url]);
    t.is(served.stdout, 'hello /');
    t.deepEqual(proxy.heads, [`GET ${url}`]);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a Node TLS client: two absolute-form GETs on one kept-alive TLS connection', async (t) => {
  const origin = await startHttpOrigin(hello);
  const proxy = await startTlsProxy();
  let client: tls.TLSSocket | undefined;
  try {
    client = await tlsClient(proxy.port);
    const all = collect(client);
    const base = `http://127.0.0.1:${origin.port}`;
    client.write(`GET ${base}/one HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
    client.write(`GET ${base}/two HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: close\r\n\r\n`);
    const { text } = await all;
    const bodies = text.split(/HTTP\/1\.1 200 OK\r\n/).slice(1);
    t.is(bodies.length, 2, text);
    t.true(bodies[0]!.endsWith('\r\n\r\nhello /one'), bodies[0]);
    t.true(bodies[1]!.endsWith('\r\n\r\nhello /two'), bodies[1]);
    t.deepEqual(proxy.heads, [`GET ${base}/one`, `GET ${base}/two`]);
  } finally {
    client?.destroy();
    await proxy.close();
    await origin.close();
  }
});

test('a Node TLS client: a CONNECT tunnel carries bytes both ways, half-closes, and closes when both directions ended', async (t) => {
  // The origin answers what it got once the client's half of the tunnel ended, then ends its own.
  const origin = await startRawOrigin((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).toString()}`));
  });
  const proxy = await startTlsProxy();
  let client: tls.TLSSocket | undefined;
  try {
    client = await tlsClient(proxy.port);
    const authority = `127.0.0.1:${origin.port}`;
    client.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    const [first] = (await once(client, 'data')) as [Buffer];
    t.regex(first.toString('latin1'), /^HTTP\/1\.1 200 /);
    const rest = collect(client);
    const closed = once(client, 'close');
    client.end('ping');
    const { text, how } = await rest;
    t.is(text, 'got ping', 'the origin saw the half-close and answered through the tunnel');
    t.is(how, 'end');
    await closed;
    t.true(await pollUntil(() => proxy.server.connections === 0, 200), 'the proxy closed the connection');
    t.deepEqual(proxy.heads, [`CONNECT ${authority}`]);
  } finally {
    client?.destroy();
    await proxy.close();
    await origin.close();
  }
});

test('undici ProxyAgent with an https:// proxy URL (proxyTls): HTTP and HTTPS origins', async (t) => {
  const { fetch, ProxyAgent } = await import('undici');
  const plain = await startHttpOrigin(hello);
  const secure = await startHttpsOrigin(hello);
  const proxy = await startTlsProxy();
  const agent = new ProxyAgent({ uri: `https://127.0.0.1:${proxy.port}`, proxyTls: { ca: TLS.cert, servername: 'localhost' }, requestTls: { ca: TLS.cert } });
  try {
    const first = await fetch(`http://127.0.0.1:${plain.port}/a`, { dispatcher: agent });
    t.is(first.status, 200);
    t.is(await first.text(), 'hello /a');
    const second = await fetch(`https://127.0.0.1:${secure.port}/b`, { dispatcher: agent });
    t.is(second.status, 200);
    t.is(await second.text(), 'hello /b');
    // ProxyAgent tunnels plain HTTP too by default: either way, both requests went through the TLS listener.
    t.true(
      proxy.heads.some((head) => head.includes(`127.0.0.1:${plain.port}`)),
      proxy.heads.join(', '),
    );
    t.true(proxy.heads.includes(`CONNECT 127.0.0.1:${secure.port}`), proxy.heads.join(', '));
    t.is(proxy.server.stats.tlsHandshakeErrors, 0);
  } finally {
    await agent.close();
    await proxy.close();
    await plain.close();
    await secure.close();
  }
});

test("the handshake gets head-parser's headersTimeoutMs; a stalled or non-TLS client is counted in proxyline_tls_handshake_errors_total", async (t) => {
  const registry = new Registry();
  const child = container.createChildContainer();
  child.registerInstance(Logger, new SilentLogger());
  child.registerInstance(MetricsRegistry, registry);
  const origin = await startHttpOrigin(hello);
  const plugins = [{ name: 'head-parser', options: { headersTimeoutMs: 200 } }, ...DEFAULT_CHAIN.slice(1), 'metrics'];
  const proxy = await startProxy({ container: child, tls: TLS, plugins });
  const sockets: net.Socket[] = [];
  try {
    // Nothing sent: only the head timeout closes it (the listener's own default is 30 s).
    const stalled = await connectTo(proxy.port);
    sockets.push(stalled);
    const garbage = await connectTo(proxy.port);
    sockets.push(garbage);
    const ends = [collect(stalled), collect(garbage)];
    garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await Promise.all(ends);
    const { stats } = proxy.server;
    t.true(await pollUntil(() => stats.tlsHandshakeErrors === 2, 200), `counted: ${stats.tlsHandshakeErrors}`);
    t.regex(await registry.metrics(), /^proxyline_tls_handshake_errors_total 2$/m);

    const client = await tlsClient(proxy.port);
    sockets.push(client);
    const answer = collect(client);
    client.write(`GET http://127.0.0.1:${origin.port}/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    t.regex((await answer).text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhello \/after$/);
  } finally {
    for (const socket of sockets) socket.destroy();
    await proxy.close();
    await origin.close();
  }
});

test("the faults plugin's reset behind the TLS listener resets the connection; nothing crashes and the proxy keeps serving", async (t) => {
  const origin = await startRawOrigin((socket) => socket.pipe(socket));
  const web = await startHttpOrigin(hello);
  const faults = { name: 'faults', options: { faults: [{ name: 'rst', type: 'reset', direction: 'upstream', match: { methods: ['CONNECT'] } }] } };
  const [first, ...rest] = DEFAULT_CHAIN;
  const proxy = await startTlsProxy([first!, ...rest.slice(0, 2), faults, ...rest.slice(2)]);
  const sockets: tls.TLSSocket[] = [];
  try {
    const client = await tlsClient(proxy.port);
    sockets.push(client);
    const authority = `127.0.0.1:${origin.port}`;
    const ended = collect(client);
    client.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\nhello`);
    await ended;
    t.true(await pollUntil(() => proxy.server.connections === 0, 200), 'the connection is gone');

    const next = await tlsClient(proxy.port);
    sockets.push(next);
    const answer = collect(next);
    next.write(`GET http://127.0.0.1:${web.port}/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    t.regex((await answer).text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhello \/next$/);
  } finally {
    for (const socket of sockets) socket.destroy();
    await proxy.close();
    await origin.close();
    await web.close();
  }
});

chromiumTest('Chromium --proxy-server=https://: a page over plain HTTP through the TLS listener', async (t) => {
  const origin = await startHttpOrigin((request, response) => {
    request.resume();
    response.setHeader('content-type', 'text/html');
    response.end(`<html><body><p id="seen">through ${request.headers.via ?? 'nothing'}</p></body></html>`);
  });
  // Only the origin may be reached: the browser's own background requests are refused, never dialled.
  const policy = { name: 'destination-policy', options: { default: 'deny', rules: [{ action: 'allow', hosts: ['127.0.0.1'], ports: [origin.port] }] } };
  const [first, ...rest] = DEFAULT_CHAIN;
  const proxy = await startTlsProxy([first!, ...rest.slice(0, 2), policy, ...rest.slice(2)]);
  const url = `http://127.0.0.1:${origin.port}/page`;
  try {
    await withTempDir('proxyline-chromium-', (profile) => browse(t, profile, proxy, url));
  } finally {
    await proxy.close();
    await origin.close();
  }
});

/** Opens `url` in headless Chromium through the TLS proxy and checks the page came through it. */
async function browse(t: ExecutionContext, profile: string, proxy: { port: number; heads: string[] }, url: string): Promise<void> {
  // Chromium takes a certificate to trust by the SHA-256 of its public key (SPKI, base64).
  const spki = createHash('sha256')
    .update(new X509Certificate(TLS.cert).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  const { code, stdout, stderr } = await run(CHROMIUM!, [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    `--user-data-dir=${profile}`,
    `--proxy-server=https://127.0.0.1:${proxy.port}`,
    // Chromium sends loopback addresses direct unless told otherwise.
    '--proxy-bypass-list=<-loopback>',
    // Trust the test certificate (the proxy's) by its public key, and nothing else.
    `--ignore-certificate-errors-spki-list=${spki}`,
    '--dump-dom',
    url,
  ]);
  t.is(code, 0, stderr.slice(-2000));
  t.regex(stdout, /<p id="seen">through 1\.1 proxyline<\/p>/);
  t.true(proxy.heads.includes(`GET ${url}`), proxy.heads.join(', '));
}
