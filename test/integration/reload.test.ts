// Reloading plugins.json in the running CLI: SIGHUP and POST /reload, valid and invalid files, while
// a kept-alive client, a CONNECT tunnel and a stream of new connections keep traffic flowing.
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { adminRequest } from '../helpers/admin.js';
import { runCli } from '../helpers/cli.js';
import { header, openClient } from '../helpers/keep-alive.js';
import { openTunnel, proxiedRequest, ROOT, startHttpOrigin, startRawOrigin } from '../helpers/net.js';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { pollUntil } from '../helpers/wire.js';

const MARKER = path.join(ROOT, 'test/fixtures/plugins/dispose-marker.plugin.js');

/** A chain whose responses say `Via: 1.1 <via>`, and whose dispose-marker writes `tag` to disposed.txt. */
function chain(tag: string, via: string): unknown[] {
  return [
    { name: 'head-parser' },
    { name: 'connect-handler' },
    { name: 'dispose-marker', module: MARKER, options: { tag, file: 'disposed.txt' } },
    { name: 'http-forward', options: { via } },
    { name: 'upstream-dialer' },
    { name: 'byte-counter' },
    { name: 'access-log', options: { path: 'access.log' } },
  ];
}

/** `via` breaks http-forward's pattern; the dispose-marker before it has already been constructed. */
const invalid = (tag: string) => chain(tag, 'not a token');

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The byte at `offset` of the tunnel's stream: chunk n (1 KiB) is filled with n % 251. */
const TUNNEL_CHUNK = 1024;
const tunnelByte = (offset: number) => Math.floor(offset / TUNNEL_CHUNK) % 251;

test('reloads keep traffic flowing: new connections get the new chain, open ones keep theirs, old chains are disposed after their last connection', async (t) => {
  const origin = await startHttpOrigin((_request, response) => response.end('hello'));
  const echo = await startRawOrigin((socket) => socket.pipe(socket));
  let proxy: ProxyProcess | undefined;
  let client: { socket: net.Socket } | undefined;
  let tunnel: net.Socket | undefined;
  let stop = false;
  try {
    proxy = await startProxyProcess(chain('gen1', 'gen1'), { args: ['--admin-port', '0', '--grace-period', '2000'] });
    const dir = path.dirname(proxy.config);
    const disposed = () => (existsSync(path.join(dir, 'disposed.txt')) ? readFileSync(path.join(dir, 'disposed.txt'), 'utf8').split('\n').filter(Boolean) : []);
    t.true(await pollUntil(() => /proxyline admin on http:\/\/127\.0\.0\.1:\d+\n/.test(proxy!.stdout())), proxy.stdout());
    const adminPort = Number(/proxyline admin on http:\/\/127\.0\.0\.1:(\d+)\n/.exec(proxy.stdout())![1]);
    const url = `http://127.0.0.1:${origin.port}/`;
    const failures: string[] = [];
    let gets = 0;

    // The old connection: a kept-alive client asking again and again, always through gen1.
    const kept = await openClient(proxy.port);
    client = kept;
    let keptRequests = 0;
    const keptLoop = (async () => {
      for (let i = 0; i < 20_000 && !stop; i++) {
        kept.socket.write(`GET ${url} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
        gets++;
        const response = await kept.reader.next();
        keptRequests++;
        if (response.status !== 200 || header(response, 'via') !== '1.1 gen1')
          failures.push(`kept-alive: ${response.statusLine} via ${header(response, 'via')}`);
        await pause(2);
      }
    })().catch((error: unknown) => failures.push(`kept-alive: ${String(error)}`));

    // A tunnel opened on gen1, echoing a checked byte pattern continuously.
    const opened = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`);
    tunnel = opened.socket;
    t.regex(opened.head, /^HTTP\/1\.1 200 /);
    let sent = 0;
    let received = 0;
    let wakeTunnel: (() => void) | undefined;
    tunnel.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] !== tunnelByte(received + i)) {
          failures.push(`tunnel: wrong byte at ${received + i}`);
          break;
        }
      }
      received += chunk.length;
      wakeTunnel?.();
    });
    const tunnelSocket = tunnel;
    const tunnelLoop = (async () => {
      for (let n = 0; n < 20_000 && !stop; n++) {
        tunnelSocket.write(Buffer.alloc(TUNNEL_CHUNK, n % 251));
        sent += TUNNEL_CHUNK;
        // Bounded wait for the echo of this chunk.
        for (let waits = 0; received < sent && waits < 100; waits++) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 100);
            wakeTunnel = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        if (received < sent) throw new Error(`the tunnel echoed ${received} of ${sent} bytes`);
        await pause(2);
      }
    })().catch((error: unknown) => failures.push(`tunnel: ${String(error)}`));

    // New connections all along, one request each: every one must succeed, whichever chain it gets.
    let freshRequests = 0;
    const freshLoop = (async () => {
      for (let i = 0; i < 20_000 && !stop; i++) {
        gets++;
        const response = await proxiedRequest(proxy.port, url);
        freshRequests++;
        if (response.status !== 200) failures.push(`new connection: ${response.status}`);
        await pause(5);
      }
    })().catch((error: unknown) => failures.push(`new connection: ${String(error)}`));

    /** A new connection's response says `via` (some tries: a reload by SIGHUP lands a little later). */
    const newConnectionsSee = async (via: string) => {
      for (let i = 0; i < 100; i++) {
        gets++;
        const response = await proxiedRequest(proxy!.port, url);
        if (response.status !== 200) failures.push(`probe: ${response.status}`);
        if (response.headers.via === `1.1 ${via}`) return true;
        await pause(20);
      }
      return false;
    };
    const healthAfter = async (reloads: number) => {
      let health = await adminRequest(adminPort, 'GET', '/healthz');
      for (let i = 0; i < 200 && !health.body.includes(`reloads: ${reloads} (`); i++) {
        await pause(25);
        health = await adminRequest(adminPort, 'GET', '/healthz');
      }
      return health;
    };
    const write = (plugins: unknown[]) => writeFileSync(proxy!.config, JSON.stringify({ plugins }));

    t.true(await newConnectionsSee('gen1'));

    // 1. A valid file by SIGHUP.
    write(chain('gen2', 'gen2'));
    proxy.child.kill('SIGHUP');
    t.true(await newConnectionsSee('gen2'), 'new connections use the reloaded chain');
    t.regex((await healthAfter(1)).body, /^ok\nreloads: 1 \(0 failed\)\nlast reload: \S+ ok\n$/);

    // 2. An invalid file by SIGHUP: logged with its path, shown on /healthz, the running chain stays.
    write(invalid('bad1'));
    proxy.child.kill('SIGHUP');
    const health = await healthAfter(2);
    t.is(health.status, 200);
    const startUpLine = (await runCli(['validate', '--config', proxy.config])).stderr;
    t.regex(startUpLine, /^proxyline: .*plugins\.json: plugins\[3\] \("http-forward"\) options\.via: expected to match pattern .*, found "not a token"\n$/);
    const message = startUpLine.slice('proxyline: '.length, -1);
    t.true(health.body.includes(`last reload error: `) && health.body.includes(message), health.body);
    t.regex(health.body, /reloads: 2 \(1 failed\)\nlast reload: \S+ failed\n/);
    t.true(proxy.stderr().includes(`reload (SIGHUP) failed, the running chain stays: ${message}`), proxy.stderr());
    t.true(await newConnectionsSee('gen2'), 'the running chain stayed');

    // 3. A valid file by POST /reload: in force when the answer arrives.
    write(chain('gen3', 'gen3'));
    const reloaded = await adminRequest(adminPort, 'POST', '/reload');
    t.is(reloaded.status, 200, reloaded.body);
    const summary = JSON.parse(reloaded.body) as { reloaded: boolean; plugins: string[]; reloads: number };
    t.true(summary.reloaded);
    t.deepEqual(summary.plugins, ['head-parser', 'connect-handler', 'dispose-marker', 'http-forward', 'upstream-dialer', 'byte-counter', 'access-log']);
    t.is(summary.reloads, 3);
    gets++;
    t.is((await proxiedRequest(proxy.port, url)).headers.via, '1.1 gen3');

    // 4. An invalid file by POST /reload: 422 with the error.
    write(invalid('bad2'));
    const refused = await adminRequest(adminPort, 'POST', '/reload');
    t.is(refused.status, 422);
    t.is((JSON.parse(refused.body) as { error: string }).error, message);
    t.true(await newConnectionsSee('gen3'));
    t.is((await adminRequest(adminPort, 'GET', '/reload')).status, 405);

    // 5. A valid file by SIGHUP again.
    write(chain('gen4', 'gen4'));
    proxy.child.kill('SIGHUP');
    t.true(await newConnectionsSee('gen4'));
    t.regex((await healthAfter(5)).body, /reloads: 5 \(2 failed\)\nlast reload: \S+ ok\nlast reload error: /);

    // The chains with no connection left are disposed, and so were the plugins an invalid file had
    // constructed before its error; gen1 still serves the kept-alive client and the tunnel.
    t.true(await pollUntil(() => ['gen2', 'gen3', 'bad1', 'bad2'].every((tag) => disposed().includes(tag))), disposed().join(','));
    t.false(disposed().includes('gen1'), 'gen1 still has connections');
    t.false(disposed().includes('gen4'), 'gen4 is the running chain');

    // The old connections still go on after the last reload, on gen1.
    const [keptBefore, sentBefore] = [keptRequests, sent];
    t.true(await pollUntil(() => keptRequests > keptBefore + 3 && sent > sentBefore + 3 * TUNNEL_CHUNK));
    stop = true;
    await Promise.all([keptLoop, tunnelLoop, freshLoop]);
    t.deepEqual(failures, []);
    t.is(received, sent, 'every tunnel byte came back');
    t.true(freshRequests > 0);

    // Their last connections closed: gen1 is disposed now.
    kept.socket.end();
    tunnel.end();
    t.true(await pollUntil(() => disposed().includes('gen1')), disposed().join(','));

    // A clean shutdown writes out every log; the chains shared access.log, line by line.
    proxy.child.kill('SIGTERM');
    const [code] = (await once(proxy.child, 'exit')) as [number | null];
    t.is(code, 0);
    t.true(disposed().includes('gen4'));
    const records = readFileSync(path.join(dir, 'access.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { method: string | null; status: number | null });
    t.is(records.filter((record) => record.method === 'GET' && record.status === 200).length, gets, 'one whole record per request');
    t.is(records.filter((record) => record.method === 'CONNECT').length, 1);
  } finally {
    stop = true;
    client?.socket.destroy();
    tunnel?.destroy();
    await proxy?.close();
    await origin.close();
    await echo.close();
  }
});
