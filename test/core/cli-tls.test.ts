// The CLI's HTTPS listener: --tls-cert and --tls-key, the https:// ready line, and the start-up
// errors of a bad pair (exit 2, one line naming the file).
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import test from 'ava';
import { CLI, runCli } from '../helpers/cli.js';
import { connectTo, ROOT, startHttpOrigin, TLS } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';
import { collect, pollUntil } from '../helpers/wire.js';

const CERT = path.join(ROOT, 'test/fixtures/localhost-cert.pem');
const KEY = path.join(ROOT, 'test/fixtures/localhost-key.pem');

test('--help documents --tls-cert and --tls-key, and the https:// ready line', async (t) => {
  const { code, stdout } = await runCli(['--help']);
  t.is(code, 0);
  t.true(stdout.includes('--tls-cert <file>'));
  t.true(stdout.includes('--tls-key <file>'));
  t.true(stdout.includes('(https:// with --tls-cert)'));
});

test('with --tls-cert and --tls-key it says https://, serves TLS clients, and closes a stalled or non-TLS one within headersTimeoutMs', async (t) => {
  await withTempDir('proxyline-cli-tls-', async (dir) => {
    const config = path.join(dir, 'plugins.json');
    // The listener's own default is 30 s: only head-parser's 300 ms closes the stalled client in time.
    const plugins = [
      { name: 'head-parser', options: { headersTimeoutMs: 300 } },
      { name: 'connect-handler' },
      { name: 'http-forward' },
      { name: 'upstream-dialer' },
    ];
    await writeFile(config, JSON.stringify({ plugins }));
    const origin = await startHttpOrigin((request, response) => response.end(`hello ${request.url}`));
    const child = spawn(process.execPath, [CLI, '--port', '0', '--config', config, '--tls-cert', CERT, '--tls-key', KEY], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const sockets: net.Socket[] = [];
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const match = /^proxyline listening on https:\/\/127\.0\.0\.1:(\d+)\n$/.exec(line.toString());
      t.truthy(match, line.toString());
      const port = Number(match![1]);

      const stalled = await connectTo(port);
      const garbage = await connectTo(port);
      sockets.push(stalled, garbage);
      const ends = [collect(stalled), collect(garbage)];
      garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await Promise.all(ends);
      t.true(await pollUntil(() => stderr.includes('TLS handshake failed: '), 200), stderr);

      const client = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: TLS.cert });
      client.on('error', () => {});
      sockets.push(client);
      await once(client, 'secureConnect');
      const answer = collect(client);
      client.write(`GET http://127.0.0.1:${origin.port}/cli HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      t.regex((await answer).text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhello \/cli$/);

      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      t.is(code, 0);
    } finally {
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      child.kill('SIGKILL');
      await origin.close();
    }
  });
});

test('a bad --tls-cert or --tls-key file exits 2 with one line naming it, before listening', async (t) => {
  await withTempDir('proxyline-cli-tls-', async (dir) => {
    const missing = path.join(dir, 'missing.pem');
    const notPem = path.join(dir, 'not-pem.txt');
    const otherKey = path.join(dir, 'other-key.pem');
    await writeFile(notPem, 'hello\n');
    await writeFile(otherKey, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const cases: [string[], string][] = [
      [['--tls-cert', missing, '--tls-key', KEY], `proxyline: --tls-cert ${missing}: expected a readable file, found ENOENT\n`],
      [['--tls-cert', CERT, '--tls-key', missing], `proxyline: --tls-key ${missing}: expected a readable file, found ENOENT\n`],
      [['--tls-cert', dir, '--tls-key', KEY], `proxyline: --tls-cert ${dir}: expected a readable file, found EISDIR\n`],
      [['--tls-cert', notPem, '--tls-key', KEY], `proxyline: --tls-cert ${notPem}: expected a PEM certificate, found no "-----BEGIN CERTIFICATE-----" line\n`],
      [
        ['--tls-cert', CERT, '--tls-key', notPem],
        `proxyline: --tls-key ${notPem}: expected a PEM private key, found no "-----BEGIN … PRIVATE KEY-----" line\n`,
      ],
      [['--tls-cert', CERT, '--tls-key', CERT], `proxyline: --tls-key ${CERT}: expected a PEM private key, found no "-----BEGIN … PRIVATE KEY-----" line\n`],
      [['--tls-cert', CERT, '--tls-key', otherKey], `proxyline: --tls-key ${otherKey}: expected the private key of --tls-cert ${CERT}, found another key\n`],
      [['--tls-cert', CERT], 'proxyline: --tls-cert: expected --tls-key too, found it missing\n'],
      [['--tls-key', KEY], 'proxyline: --tls-key: expected --tls-cert too, found it missing\n'],
    ];
    for (const [args, stderr] of cases) {
      const result = await runCli(['--port', '0', ...args]);
      t.is(result.code, 2, args.join(' '));
      t.is(result.stdout, '', args.join(' '));
      t.is(result.stderr, stderr);
    }
  });
});
