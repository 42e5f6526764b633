// The CLI's SOCKS5 listener: --socks-port / --socks-host, its ready line, and a client through it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import test from 'ava';
import { runCli } from '../helpers/cli.js';
import { orClose, startHttpOrigin } from '../helpers/net.js';
import { startProxyProcess } from '../helpers/proxy-process.js';

const CURL = '/usr/bin/curl';
const run = promisify(execFile);
const CHAIN = ['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer'].map((name) => ({ name }));

test('--socks-port prints "proxyline socks5 on socks5://HOST:PORT" after the HTTP ready line, and serves SOCKS5', async (t) => {
  const origin = await startHttpOrigin((request, response) => response.end(`hello ${request.url}`));
  const proxy = await orClose(startProxyProcess(CHAIN, { args: ['--socks-port', '0', '--socks-host', '127.0.0.1'] }), origin);
  try {
    t.truthy(proxy.socksPort, 'the socks5 ready line was printed');
    t.not(proxy.socksPort, proxy.port);
    if (!existsSync(CURL)) return t.log('curl missing: the tunnel itself is not checked here');
    const { stdout } = await run(CURL, ['-sS', '-m', '10', '--socks5-hostname', `127.0.0.1:${proxy.socksPort}`, `http://localhost:${origin.port}/cli`]);
    t.is(stdout, 'hello /cli');
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('--socks-port is checked like --port, --socks-host needs it, and --help documents both', async (t) => {
  const bad = await runCli(['--port', '0', '--socks-port', '70000']);
  t.is(bad.code, 2);
  t.is(bad.stderr, 'proxyline: --socks-port: expected an integer from 0 to 65535, found "70000"\n');
  const alone = await runCli(['--port', '0', '--socks-host', '127.0.0.1']);
  t.is(alone.code, 2);
  t.is(alone.stderr, 'proxyline: --socks-host: expected --socks-port too, found it missing\n');
  const { stdout } = await runCli(['--help']);
  t.true(stdout.includes('--socks-port <port>'));
  t.true(stdout.includes('--socks-host <address>'));
  t.true(stdout.includes('proxyline socks5 on socks5://HOST:PORT'));
});
