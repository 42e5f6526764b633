import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { adminGet } from '../helpers/admin.js';
import { CLI, runCli } from '../helpers/cli.js';
import { proxiedRequest, startHttpOrigin } from '../helpers/net.js';

const run = runCli;

test('--help documents the admin flags', async (t) => {
  const { code, stdout } = await run(['--help']);
  t.is(code, 0);
  for (const flag of ['--admin-port', '--admin-host']) t.true(stdout.includes(flag), flag);
  t.true(stdout.includes('proxyline admin on http://HOST:PORT'));
});

test('bad admin flags exit 2 with a reason', async (t) => {
  const port = await run(['--admin-port', 'x']);
  t.is(port.code, 2);
  t.is(port.stderr, 'proxyline: --admin-port: expected an integer from 0 to 65535, found "x"\n');
  const host = await run(['--admin-host', '127.0.0.1']);
  t.is(host.code, 2);
  t.is(host.stderr, 'proxyline: --admin-host: expected --admin-port too, found it missing\n');
});

test('an admin port in use exits 2 and prints no listening line', async (t) => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  try {
    const { port } = blocker.address() as net.AddressInfo;
    const result = await run(['--port', '0', '--admin-port', String(port)]);
    t.is(result.code, 2);
    t.is(result.stdout, '');
    t.regex(result.stderr, /cannot listen on 127\.0\.0\.1:\d+ \(admin\): .*EADDRINUSE/);
  } finally {
    blocker.close();
  }
});

test('--admin-port 0 prints both lines, serves /healthz and /metrics, and SIGTERM exits 0', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'proxyline-cli-admin-'));
  const origin = await startHttpOrigin((_request, response) => response.end('hi'));
  const config = path.join(dir, 'plugins.json');
  await writeFile(
    config,
    JSON.stringify({
      plugins: [{ name: 'head-parser' }, { name: 'http-forward' }, { name: 'upstream-dialer' }, { name: 'byte-counter' }, { name: 'metrics' }],
    }),
  );
  const child = spawn(process.execPath, [CLI, '--port', '0', '--admin-port', '0', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (stdout += chunk));
    // Bounded: at most a few chunks arrive before both lines are there (and the timer kills the child).
    for (let reads = 0; reads < 10 && stdout.split('\n').length < 3; reads++) await once(child.stdout, 'data');
    const match = /^proxyline listening on http:\/\/127\.0\.0\.1:(\d+)\nproxyline admin on http:\/\/127\.0\.0\.1:(\d+)\n$/.exec(stdout);
    t.truthy(match, stdout);
    const [proxyPort, adminPort] = [Number(match![1]), Number(match![2])];
    t.not(proxyPort, adminPort);

    const health = await adminGet(adminPort, '/healthz');
    t.is(health.status, 200);
    t.is(health.body, 'ok\n');
    t.is((await adminGet(adminPort, '/elsewhere')).status, 404);

    t.is((await proxiedRequest(proxyPort, `http://127.0.0.1:${origin.port}/`)).status, 200);
    const metrics = await adminGet(adminPort, '/metrics');
    t.is(metrics.status, 200);
    t.regex(metrics.body, /^proxyline_requests_total\{status_class="2xx"\} 1$/m);

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    t.is(code, 0);
    await t.throwsAsync(adminGet(adminPort, '/healthz'), undefined, 'the admin listener closed too');
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
});
