import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { CLI, runCli } from '../helpers/cli.js';
import { withTempDir } from '../helpers/temp.js';

const run = runCli;

test('--help documents every flag', async (t) => {
  const { code, stdout } = await run(['--help']);
  t.is(code, 0);
  for (const flag of ['--host', '--port', '--config', '--grace-period', '--help']) t.true(stdout.includes(flag), flag);
});

test('bad flags exit 2 with a reason', async (t) => {
  const unknown = await run(['--nope']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /proxyline: .*--nope/);
  const port = await run(['--port', '70000']);
  t.is(port.code, 2);
  t.is(port.stderr, 'proxyline: --port: expected an integer from 0 to 65535, found "70000"\n');
});

test('--max-connections must be a positive integer: 0 and abc exit 2 with a reason, and --help documents it', async (t) => {
  for (const value of ['0', 'abc']) {
    const result = await run(['--port', '0', '--max-connections', value]);
    t.is(result.code, 2, value);
    t.is(result.stdout, '', value);
    t.is(result.stderr, `proxyline: --max-connections: expected an integer from 1 to 10000000, found "${value}"\n`);
  }
  const { stdout } = await run(['--help']);
  t.true(stdout.includes('--max-connections <n>'));
});

test('an invalid plugins.json exits 2 naming the entry, and nothing listens', async (t) => {
  await withTempDir('proxyline-cli-', async (dir) => {
    const file = path.join(dir, 'plugins.json');
    await writeFile(file, JSON.stringify({ plugins: [{ name: 'head-parser', options: { maxHeaderBytes: 'x' } }] }));
    const port = await freePort();
    const result = await run(['--port', String(port), '--config', file]);
    t.is(result.code, 2);
    t.is(result.stdout, '');
    t.is(result.stderr, `proxyline: ${file}: plugins[0] ("head-parser") options.maxHeaderBytes: expected integer, found "x"\n`);
  });
});

test('a port in use exits 2', async (t) => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  try {
    const { port } = blocker.address() as net.AddressInfo;
    const result = await run(['--port', String(port)]);
    t.is(result.code, 2);
    t.regex(result.stderr, /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  } finally {
    blocker.close();
  }
});

test('it prints the listening line, serves, and exits 0 on SIGTERM', async (t) => {
  const child = spawn(process.execPath, [CLI, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const match = /^proxyline listening on http:\/\/127\.0\.0\.1:(\d+)\n$/.exec(line.toString());
    t.truthy(match, line.toString());
    const socket = net.connect(Number(match![1]), '127.0.0.1');
    await once(socket, 'connect');
    socket.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'close');
    t.true(Buffer.concat(chunks).toString().startsWith('HTTP/1.1 400 Bad Request\r\n'));
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    t.is(code, 0);
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
});

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
