// `proxyline print-pipeline`: the resolved chain as a person reads it, and as JSON.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { Pipeline } from '../../src/commands/print-pipeline.js';
import { runCli } from '../helpers/cli.js';
import { withTempDir } from '../helpers/temp.js';

const PLUGINS = [
  { name: 'head-parser', options: { maxHeaderBytes: 32768 } },
  { name: 'connect-handler' },
  { name: 'http-forward', options: { via: 'edge' } },
  { name: 'upstream-dialer' },
  { name: 'byte-counter' },
  { name: 'logger' },
];

test('the text: both orders, then each plugin with its stages, hooks and effective options', async (t) => {
  await withTempDir('proxyline-pipeline-', async (dir) => {
    const file = path.join(dir, 'plugins.json');
    await writeFile(file, JSON.stringify({ plugins: PLUGINS }));
    const { code, stdout, stderr } = await runCli(['print-pipeline', '--config', file]);
    t.is(code, 0, stderr);
    t.is(stderr, '');
    const lines = stdout.split('\n');
    t.deepEqual(lines.slice(0, 5), [
      `${file}: 6 plugins`,
      '',
      'inbound  (client → upstream): head-parser → connect-handler → http-forward → upstream-dialer → byte-counter',
      'outbound (upstream → client): byte-counter → http-forward',
      '',
    ]);
    t.is(lines[5], ' 1. head-parser      inbound yes  outbound no   end hooks: none');
    t.true(lines.includes('    maxHeaderBytes: 32768'), 'as written');
    t.true(lines.includes('    headersTimeoutMs: 30000'), 'a default filled in');
    t.true(stdout.includes(' 2. connect-handler  inbound yes  outbound no   end hooks: none\n    (no options)\n'));
    t.true(stdout.includes(' 3. http-forward     inbound yes  outbound yes  end hooks: none\n    forwarded: "x-forwarded-for"\n    via: "edge"\n'));
    t.true(stdout.endsWith(' 6. logger           inbound no   outbound no   end hooks: onExchangeEnd\n    format: "text"\n'), stdout);
    const again = await runCli(['print-pipeline', '--config', file]);
    t.is(again.stdout, stdout, 'stable');
  });
});

test('--json: the same chain as data', async (t) => {
  await withTempDir('proxyline-pipeline-', async (dir) => {
    const file = path.join(dir, 'plugins.json');
    await writeFile(file, JSON.stringify({ plugins: [...PLUGINS, { name: 'access-log', options: { path: 'access.log' } }] }));
    const { code, stdout, stderr } = await runCli(['print-pipeline', '--config', file, '--json']);
    t.is(code, 0, stderr);
    const pipeline = JSON.parse(stdout) as Pipeline;
    t.is(pipeline.source, file);
    t.deepEqual(pipeline.inbound, ['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer', 'byte-counter']);
    t.deepEqual(pipeline.outbound, ['byte-counter', 'http-forward']);
    t.deepEqual(
      pipeline.plugins.map(({ name, inbound, outbound, onExchangeEnd, onClose }) => [name, inbound, outbound, onExchangeEnd, onClose]),
      [
        ['head-parser', true, false, false, false],
        ['connect-handler', true, false, false, false],
        ['http-forward', true, true, false, false],
        ['upstream-dialer', true, false, false, false],
        ['byte-counter', true, true, false, false],
        ['logger', false, false, true, false],
        ['access-log', false, false, true, false],
      ],
    );
    t.deepEqual(pipeline.plugins[6]!.options, { format: 'json', maxBufferBytes: 16 * 1024 * 1024, path: 'access.log' });
  });
});

test('an invalid file: exit 2 with the line start-up prints for it', async (t) => {
  await withTempDir('proxyline-pipeline-', async (dir) => {
    const file = path.join(dir, 'plugins.json');
    await writeFile(file, JSON.stringify({ plugins: [{ name: 'head-parser', options: { maxHeaderBytes: 'big' } }] }));
    const printed = await runCli(['print-pipeline', '--config', file]);
    const started = await runCli(['--port', '0', '--config', file]);
    t.is(printed.code, 2);
    t.is(printed.stdout, '');
    t.regex(printed.stderr, /^proxyline: \S+plugins\.json: plugins\[0\] \("head-parser"\) options\.maxHeaderBytes: expected integer, found "big"\n$/);
    t.is(printed.stderr, started.stderr);
  });
});
