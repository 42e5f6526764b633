// `proxyline har`: the capture fixtures converted by the compiled CLI, checked against HAR 1.2 and
// value by value.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import type { Har, HarEntry } from '../../src/commands/har-log.js';
import { CLI, runCli, runToExit } from '../helpers/cli.js';
import { harProblems, harSchemaValidator } from '../helpers/har-check.js';
import { ROOT } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';

const SESSION = path.join(ROOT, 'test/fixtures/captures/session.jsonl');
const BUSY = path.join(ROOT, 'test/fixtures/captures/busy.jsonl');

/** The HAR the CLI prints for a capture file. */
async function har(file: string): Promise<Har> {
  const { code, stdout, stderr } = await runCli(['har', file]);
  if (code !== 0) throw new Error(`exit ${code}: ${stderr}`);
  return JSON.parse(stdout) as Har;
}

/** The entry of connection.exchange. */
function entry(log: Har, connection: number, exchange: number): HarEntry {
  const found = log.log.entries.find((e) => e._connection === connection && e._exchange === exchange);
  if (!found) throw new Error(`no entry ${connection}.${exchange}`);
  return found;
}

test('har: both fixtures convert to valid HAR 1.2 (required fields by hand, and the har-schema JSON schema when installed)', async (t) => {
  const validate = harSchemaValidator();
  if (!validate) t.log('har-schema is not installed (devDependency har-schema@2.0.0): checked by hand against the HAR 1.2 spec only');
  for (const file of [SESSION, BUSY]) {
    const log = await har(file);
    t.true(log.log.entries.length > 10, file);
    t.deepEqual(harProblems(log), [], file);
    if (validate) t.deepEqual(validate(log), [], `${file} against har-schema`);
  }
});

test('har: the hand check catches what the spec requires', (t) => {
  t.deepEqual(harProblems({ log: { version: '1.2', creator: { name: 'x', version: '1' }, entries: [] } }), []);
  const broken = {
    log: {
      version: '1.1',
      creator: { name: 'x' },
      entries: [
        { startedDateTime: 'yesterday', time: 5, request: {}, response: { status: '200' }, cache: {}, timings: { send: 0, wait: 2, receive: 1 }, extra: 1 },
      ],
    },
  };
  const problems = harProblems(broken);
  for (const expected of [
    'log.version',
    'log.creator.version: missing',
    'startedDateTime: not ISO',
    'request.url: missing',
    'response.status: expected integer',
    'time: 5 is not the sum',
    'entries[0].extra',
  ]) {
    t.true(
      problems.some((problem) => problem.includes(expected)),
      expected,
    );
  }
});

test('har: one entry per HTTP exchange in start order; the tunnel and the failure go to _skipped', async (t) => {
  const log = await har(SESSION);
  t.is(log.log.version, '1.2');
  t.is(log.log.creator.name, 'proxyline');
  t.is(log.log.creator.version, (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  t.is(log.log.entries.length, 14);
  const starts = log.log.entries.map((e) => Date.parse(e.startedDateTime));
  t.deepEqual(
    starts,
    [...starts].sort((a, b) => a - b),
  );
  t.deepEqual(
    log.log._skipped.map((s) => [s.kind, s.connection, s.target ?? s.error]),
    [
      ['tunnel', 3, 'CONNECT login.example.net:443'],
      ['failure', 7, 'ERR_PROXY_BAD_REQUEST'],
    ],
  );
  t.regex(log.log.comment ?? '', /1 tunnel\(s\), 1 connection failure\(s\)/);
});

test('har: the first exchange, field by field', async (t) => {
  const first = entry(await har(SESSION), 1, 1);
  t.is(first.startedDateTime, '2026-03-14T09:26:53.120Z');
  t.is(first.request.method, 'GET');
  t.is(first.request.url, 'http://api.example.com/v1/items?page=1&limit=20');
  t.is(first.request.httpVersion, 'HTTP/1.1');
  t.deepEqual(first.request.cookies, []);
  t.deepEqual(first.request.headers[0], { name: 'Host', value: 'api.example.com' });
  t.deepEqual(first.request.queryString, [
    { name: 'page', value: '1' },
    { name: 'limit', value: '20' },
  ]);
  t.is(first.request.headersSize, -1);
  t.is(first.request.bodySize, 0);
  t.is(first.request.postData, undefined);
  t.is(first.response.status, 200);
  t.is(first.response.statusText, 'OK');
  t.is(first.response.content.mimeType, 'application/json; charset=utf-8');
  t.is(first.response.content.size, 155);
  t.is(first.response.bodySize, 155);
  t.is(first.response.content.encoding, undefined);
  t.is((JSON.parse(first.response.content.text!) as { page: number }).page, 1);
  t.is(first.response.redirectURL, '');
  t.deepEqual(first.cache, {});
  t.deepEqual(first.timings, { blocked: -1, dns: -1, connect: 41.3, send: 0, wait: 47.3, receive: 1.6, ssl: -1 });
  t.is(first.time, 90.2);
  t.is(first.connection, '1');
  t.deepEqual(first._faults, []);
  t.false(first._reused);
  t.is(first._error, undefined);
});

test('har: a pooled upstream has no connect time: its wait for the pool is blocked, and time is still the whole exchange', async (t) => {
  const second = entry(await har(SESSION), 1, 2);
  t.true(second._reused);
  t.deepEqual(second.timings, { blocked: 0.4, dns: -1, connect: -1, send: 0, wait: 231.5, receive: 1.1, ssl: -1 });
  t.is(second.time, 233);
  t.deepEqual(second._faults, [{ name: 'slow-api', type: 'latency', direction: 'downstream', params: { delayMs: 180 } }]);
});

test('har: bodies: postData, a redirect, chunked gzip text decoded, a cut binary body in base64, an uncaptured body sized by Content-Length', async (t) => {
  const log = await har(SESSION);
  const post = entry(log, 1, 3);
  t.deepEqual(post.request.postData, { mimeType: 'application/json', text: '{"name":"widget","colour":"blue"}' });
  t.is(post.request.bodySize, 33);
  t.is(post.response.redirectURL, 'http://api.example.com/v1/items/43');
  const notModified = entry(log, 1, 4);
  t.is(notModified.response.status, 304);
  t.is(notModified.response.bodySize, 0);
  const css = entry(log, 2, 2).response;
  t.true(css.content.text!.startsWith('body { font-family: sans-serif;'));
  t.is(css.content.encoding, undefined);
  t.is(css.content.size, 728);
  t.true(css.bodySize > 0 && css.bodySize < css.content.size, 'the wire body (gzip, chunked) is smaller than the content');
  t.is(css.content.compression, css.content.size - css.bodySize);
  const logo = entry(log, 2, 1).response;
  t.is(logo.content.encoding, 'base64');
  const bytes = Buffer.from(logo.content.text!, 'base64');
  t.is(bytes.length, 1024);
  t.is(bytes.toString('hex', 0, 8), '89504e470d0a1a0a');
  t.is(logo.content.size, 1450);
  t.is(logo.bodySize, 1450);
  t.regex(logo.content.comment ?? '', /first 1024 bytes/);
  const script = entry(log, 2, 3).response;
  t.is(script.content.text, undefined);
  t.is(script.bodySize, 48213);
  t.is(script.content.size, 48213);
});

test('har: refusals, timeouts, aborts and failed dials keep their error, faults and who answered', async (t) => {
  const log = await har(SESSION);
  const refused = entry(log, 4, 1);
  t.is(refused.response.status, 403);
  t.is(refused._answeredBy, 'destination-policy');
  t.is(refused._error?.code, 'ERR_PROXY_FORBIDDEN');
  t.is(refused.response.content.text, 'Forbidden: destination not allowed\n');
  t.deepEqual([refused.timings.connect, refused.timings.blocked, refused.timings.wait], [-1, -1, 0.6]);
  const timedOut = entry(log, 5, 1);
  t.is(timedOut.response.status, 504);
  t.is(timedOut._error?.code, 'ERR_PROXY_RESPONSE_TIMEOUT');
  t.is(timedOut._faults[0]?.name, 'stall');
  t.is(timedOut.response.bodySize, 48, "the proxy's own answer is whole");
  const aborted = entry(log, 6, 1);
  t.is(aborted.response.status, 0);
  t.is(aborted.response.httpVersion, '');
  t.is(aborted.response.bodySize, -1);
  t.is(aborted._error?.code, 'ERR_PROXY_ABORTED');
  t.is(aborted._faults[0]?.type, 'abort');
  t.deepEqual([aborted.timings.wait, aborted.timings.receive], [0.2, 0]);
  const badGateway = entry(log, 8, 1);
  t.is(badGateway._error?.message, 'connect ECONNREFUSED static.example.com:80');
  t.is(badGateway.timings.connect, -1);
  const search = entry(log, 9, 1);
  t.is(search.request.url, 'http://api.example.com/v1/search?q=caf%C3%A9+au+lait&tag=a&tag=b', 'the fragment is not part of the URL');
  t.deepEqual(search.request.queryString, [
    { name: 'q', value: 'café au lait' },
    { name: 'tag', value: 'a' },
    { name: 'tag', value: 'b' },
  ]);
});

test('har --out writes the file and says so; - reads stdin', async (t) => {
  await withTempDir('proxyline-har-', async (dir) => {
    const out = path.join(dir, 'session.har');
    const result = await runCli(['har', SESSION, '--out', out]);
    t.is(result.code, 0);
    t.is(result.stdout, '');
    t.is(result.stderr, `proxyline: wrote 14 entries to ${out}\n`);
    const written = JSON.parse(readFileSync(out, 'utf8')) as Har;
    t.deepEqual(written, await har(SESSION));
    const child = spawn(process.execPath, [CLI, 'har', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(readFileSync(SESSION));
    const piped = await runToExit(child);
    t.is(piped.code, 0);
    t.is((JSON.parse(piped.stdout) as Har).log.entries.length, 14);
  });
});

test('har: bad arguments and bad capture files exit 2 with one line naming the file and line', async (t) => {
  await withTempDir('proxyline-har-', async (dir) => {
    const lines = readFileSync(SESSION, 'utf8').split('\n');
    const cases: [string[], RegExp][] = [
      [['har'], /^proxyline: har: expected one capture file, found 0 \(see proxyline har --help\)\n$/],
      [['har', 'a.jsonl', 'b.jsonl'], /^proxyline: har: expected one capture file, found 2/],
      [['har', '--nope', SESSION], /^proxyline: har: Unknown option '--nope'/],
      [['har', path.join(dir, 'missing.jsonl')], /^proxyline: cannot read .*missing\.jsonl: ENOENT/],
      [['har', SESSION, '--out', path.join(dir, 'no/such/dir/x.har')], /^proxyline: cannot write .*x\.har: ENOENT/],
    ];
    const write = (name: string, text: string) => {
      writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const notJson = write('not-json.jsonl', `${lines[0]}\n{oops\n${lines[1]}\n`);
    cases.push([['har', notJson], new RegExp(`^proxyline: ${notJson.replaceAll('.', '\\.')}:2: not JSON`)]);
    const version = write('v2.jsonl', `${lines[0]!.replace('"v":1', '"v":2')}\n`);
    cases.push([['har', version], /:1: v: capture format version not supported \(this proxyline reads version 1\)\n$/]);
    const missing = write('no-timings.jsonl', `${lines[0]}\n${lines[1]!.replace(/"timings":\{[^}]*\},/, '')}\n`);
    cases.push([['har', missing], /:2: record: missing timings\n$/]);
    const wrongType = write('wrong.jsonl', `${lines[0]!.replace('"endMs":90.2', '"endMs":"90"')}\n`);
    cases.push([['har', wrongType], /:1: timings\.endMs: must be number\n$/]);
    for (const [args, expected] of cases) {
      const result = await runCli(args);
      t.is(result.code, 2, args.join(' '));
      t.is(result.stdout, '', args.join(' '));
      t.regex(result.stderr, expected, args.join(' '));
    }
  });
});

test('har: a last line cut short (the writer stopped mid-line) is left out with a warning; blank lines are skipped', async (t) => {
  await withTempDir('proxyline-har-', async (dir) => {
    const lines = readFileSync(SESSION, 'utf8').split('\n');
    const file = path.join(dir, 'cut.jsonl');
    writeFileSync(file, `${lines[0]}\n\n${lines[1]}\n${lines[2]!.slice(0, 80)}`);
    const result = await runCli(['har', file]);
    t.is(result.code, 0);
    t.is(result.stderr, `proxyline: ${file}:4: left out, cut short (no newline at its end)\n`);
    t.is((JSON.parse(result.stdout) as Har).log.entries.length, 2);
  });
});
