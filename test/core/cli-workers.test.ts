// `--workers N`: the real CLI as a cluster primary with its workers, on 127.0.0.1 sockets.
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import test from 'ava';
import { adminGet, adminRequest } from '../helpers/admin.js';
import { runCli } from '../helpers/cli.js';
import { orClose, proxiedRequest, startHttpOrigin } from '../helpers/net.js';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';

const PLUGINS = [
  { name: 'head-parser' },
  { name: 'http-forward' },
  { name: 'upstream-dialer' },
  { name: 'byte-counter' },
  { name: 'logger' },
  { name: 'metrics' },
];

interface Health {
  workers: { up: number; expected: number; pids: number[] };
}

/** /healthz of the primary after reloads. */
interface HealthWithReloads extends Health {
  reloads: { reloads: number; failed: number; lastError?: { error: string } };
}

async function health(adminPort: number): Promise<{ status: number; json: Health }> {
  const { status, body } = await adminGet(adminPort, '/healthz');
  return { status, json: JSON.parse(body) as Health };
}

/** Asks /healthz until `done` holds (at most 200 times, 50 ms apart); returns the last answer. */
async function healthUntil(adminPort: number, done: (health: Health) => boolean): Promise<Health> {
  let last = (await health(adminPort)).json;
  for (let attempt = 0; attempt < 200 && !done(last); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = (await health(adminPort)).json;
  }
  return last;
}

/** Starts `--workers 2 --admin-port 0`; resolves the process and its admin port once every ready line is out. */
async function startWorkers(args: string[] = []): Promise<{ proxy: ProxyProcess; adminPort: number }> {
  const proxy = await startProxyProcess(PLUGINS, { args: ['--workers', '2', '--admin-port', '0', ...args] });
  try {
    const match = await proxy.waitForStdout(/proxyline admin on http:\/\/127\.0\.0\.1:(\d+)\n/);
    return { proxy, adminPort: Number(match[1]) };
  } catch (error) {
    await proxy.close();
    throw error;
  }
}

test('--workers 2: both workers serve, their log lines carry the worker id, /metrics sums them and /healthz counts them', async (t) => {
  const origin = await startHttpOrigin((_request, response) => response.end('hi'));
  const { proxy, adminPort } = await orClose(startWorkers(), origin);
  try {
    t.regex(proxy.stdout(), /^proxyline listening on http:\/\/127\.0\.0\.1:\d+\nproxyline workers: 2\nproxyline admin on http:\/\/127\.0\.0\.1:\d+\n$/);
    const ready = await health(adminPort);
    t.is(ready.status, 200);
    t.is(ready.json.workers.up, 2);
    t.is(ready.json.workers.expected, 2);
    t.is(new Set(ready.json.workers.pids).size, 2);
    t.false(ready.json.workers.pids.includes(proxy.pid), 'the primary serves no requests');

    // One connection per request; the primary hands them out in turn, so a few reach both.
    const workers = () => new Set([...proxy.stderr().matchAll(/ 200 in=.*\{"worker":(\d+)\}$/gm)].map((match) => match[1]));
    let sent = 0;
    for (; sent < 40 && (sent < 6 || workers().size < 2); sent++) {
      const response = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/`);
      t.is(response.status, 200);
      t.is(response.body.toString(), 'hi');
    }
    // The last log line may still be on its way.
    for (let wait = 0; wait < 100 && workers().size < 2; wait++) await new Promise((resolve) => setTimeout(resolve, 20));
    t.is(workers().size, 2, proxy.stderr());

    // Every request counted once, whichever worker served it.
    let metrics = '';
    for (let attempt = 0; attempt < 50; attempt++) {
      const answer = await adminGet(adminPort, '/metrics');
      t.is(answer.status, 200);
      metrics = answer.body;
      if (metrics.includes(`proxyline_requests_total{status_class="2xx"} ${sent}\n`)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    t.regex(metrics, new RegExp(`^proxyline_requests_total\\{status_class="2xx"\\} ${sent}$`, 'm'));
    t.regex(metrics, new RegExp(`^proxyline_request_duration_seconds_count ${sent}$`, 'm'));

    const faults = await adminGet(adminPort, '/faults');
    t.is(faults.status, 404);
    t.regex(faults.body, /not served/);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('a worker killed is restarted, and requests keep succeeding meanwhile', async (t) => {
  const origin = await startHttpOrigin((_request, response) => response.end('hi'));
  const { proxy, adminPort } = await orClose(startWorkers(), origin);
  try {
    const before = (await health(adminPort)).json.workers.pids;
    const [victim, survivor] = before as [number, number];
    process.kill(victim, 'SIGKILL');
    const gone = await healthUntil(adminPort, (h) => !h.workers.pids.includes(victim));
    t.false(gone.workers.pids.includes(victim));
    for (let i = 0; i < 4; i++) t.is((await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/`)).status, 200);

    const back = await healthUntil(adminPort, (h) => h.workers.up === 2);
    t.is(back.workers.up, 2);
    t.true(back.workers.pids.includes(survivor));
    t.false(back.workers.pids.includes(victim));
    for (let i = 0; i < 4; i++) t.is((await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/`)).status, 200);
    t.regex(proxy.stderr(), new RegExp(`worker exited: restarting \\{"worker":\\d+,"pid":${victim},"code":null,"signal":"SIGKILL","restartInMs":100\\}`));
  } finally {
    await proxy.close();
    await origin.close();
  }
});

test('SIGTERM drains every worker: a slow response in flight completes, then the primary exits 0', async (t) => {
  let arrived!: () => void;
  const requested = new Promise<void>((resolve) => (arrived = resolve));
  const origin = await startHttpOrigin((_request, response) => {
    arrived();
    setTimeout(() => response.end('late'), 300);
  });
  const { proxy, adminPort } = await orClose(startWorkers(['--grace-period', '10000']), origin);
  try {
    const { pids } = (await health(adminPort)).json.workers;
    const pending = proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/slow`);
    await requested;
    const exited = once(proxy.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    proxy.child.kill('SIGTERM');
    const response = await pending;
    t.is(response.status, 200);
    t.is(response.body.toString(), 'late');
    const [code] = await exited;
    t.is(code, 0, proxy.stderr());
    for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`);
    t.notRegex(proxy.stderr(), /restarting/);
  } finally {
    await proxy.close();
    await origin.close();
  }
});

/** An admin answer with its body parsed as the JSON `/reload` answers. */
const jsonOf = ({ status, body }: { status: number; body: string }) => ({ status, json: JSON.parse(body) as { reloaded?: boolean; error?: string } });

/** How many log lines say a worker (by id) reloaded its chain. */
function workerReloads(stderr: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of stderr.matchAll(/reload \(SIGHUP\): \S+: \d+ plugins, new connections use them .*"worker":(\d+)/g)) {
    counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + 1);
  }
  return counts;
}

test('SIGHUP and POST /reload: the primary checks the file, every worker reloads a valid one, an invalid one reaches none and shows on /healthz', async (t) => {
  const { proxy, adminPort } = await startWorkers();
  try {
    const before = await healthUntil(adminPort, (h) => h.workers.up === 2);
    proxy.child.kill('SIGHUP');
    for (let attempt = 0; attempt < 200 && workerReloads(proxy.stderr()).size < 2; attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual([...workerReloads(proxy.stderr()).keys()].sort(), ['1', '2'], 'each worker reloaded once');

    writeFileSync(proxy.config, JSON.stringify({ plugins: [{ name: 'head-parser', options: { nope: 1 } }] }));
    const refused = jsonOf(await adminRequest(adminPort, 'POST', '/reload'));
    t.is(refused.status, 422);
    t.false(refused.json.reloaded);
    t.regex(refused.json.error ?? '', /nope/);
    proxy.child.kill('SIGHUP');
    const after = await healthUntil(adminPort, (h) => (h as HealthWithReloads).reloads.failed === 2);
    const reloads = (after as HealthWithReloads).reloads;
    t.is(reloads.reloads, 3);
    t.is(reloads.failed, 2);
    t.regex(reloads.lastError?.error ?? '', /nope/);
    t.deepEqual(after.workers.pids, before.workers.pids, 'no worker died of the invalid file');
    t.is(workerReloads(proxy.stderr()).get('1'), 1, 'the invalid file never reached a worker');

    writeFileSync(proxy.config, JSON.stringify({ plugins: PLUGINS }));
    const accepted = jsonOf(await adminRequest(adminPort, 'POST', '/reload'));
    t.is(accepted.status, 200);
    t.true(accepted.json.reloaded);
    for (let attempt = 0; attempt < 200 && workerReloads(proxy.stderr()).get('2') !== 2; attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
    t.is(workerReloads(proxy.stderr()).get('2'), 2);
    t.is(proxy.child.exitCode, null);
    t.is(proxy.child.signalCode, null);
  } finally {
    await proxy.close();
  }
});

test('--workers auto forks one worker per core; --workers 1 runs a single process', async (t) => {
  const cores = os.availableParallelism();
  const auto = await startProxyProcess(PLUGINS, { args: ['--workers', 'auto'] });
  try {
    if (cores > 1) t.is((await auto.waitForStdout(/proxyline workers: (\d+)\n/))[1], String(cores));
    else t.notRegex(auto.stdout(), /workers/);
  } finally {
    await auto.close();
  }
  const single = await startProxyProcess(PLUGINS, { args: ['--workers', '1'] });
  try {
    t.is(single.stdout(), `proxyline listening on http://127.0.0.1:${single.port}\n`);
  } finally {
    await single.close();
  }
});

test('bad --workers values exit 2 with a reason, and --help documents the flag', async (t) => {
  for (const value of ['0', 'x', '1.5', '1025', '']) {
    const { code, stdout, stderr } = await runCli(['--port', '0', '--workers', value]);
    t.is(code, 2, value);
    t.is(stdout, '');
    t.is(stderr, `proxyline: --workers: expected an integer from 1 to 1024 or "auto", found "${value}"\n`);
  }
  const help = await runCli(['--help']);
  t.true(help.stdout.includes('--workers <n|auto>'));
});

test('a worker failing at start-up (no plugins.json) stops the primary with exit 2 and no ready line', async (t) => {
  const { code, stdout, stderr } = await runCli(['--port', '0', '--workers', '2', '--config', 'no-such-plugins.json']);
  t.is(code, 2);
  t.is(stdout, '');
  t.regex(stderr, /no-such-plugins\.json: top level: expected a readable file, found ENOENT/);
  t.regex(stderr, /proxyline: worker \d+ exited before listening \(code 2, signal null\)/);
});
