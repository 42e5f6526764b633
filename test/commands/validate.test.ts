// `proxyline validate`: a plugins.json checked exactly as start-up checks it, without listening.
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { runCli } from '../helpers/cli.js';
import { ROOT } from '../helpers/net.js';
import { withTempDir } from '../helpers/temp.js';

const MARKER = path.join(ROOT, 'test/fixtures/plugins/dispose-marker.plugin.js');

/** Invalid files of every kind start-up refuses: the file, its shape, an option, a name, a module, the order. */
const INVALID: Record<string, string> = {
  'bad JSON': '{ "plugins": [',
  'no plugins array': '{ "plugin": [] }',
  'a bad option': JSON.stringify({ plugins: [{ name: 'head-parser' }, { name: 'http-forward', options: { via: 5 } }] }),
  'an unknown plugin': JSON.stringify({ plugins: [{ name: 'head-parser' }, { name: 'no-such-plugin' }] }),
  'a module that is not there': JSON.stringify({ plugins: [{ name: 'x', module: './missing.js' }] }),
  'an order constraint': JSON.stringify({ plugins: [{ name: 'http-forward' }, { name: 'head-parser' }] }),
};

test('a valid file: exit 0 and "ok: N plugins", and its plugins are disposed', async (t) => {
  await withTempDir('proxyline-validate-', async (dir) => {
    const file = path.join(dir, 'plugins.json');
    const plugins = [
      { name: 'head-parser' },
      { name: 'dispose-marker', module: MARKER, options: { tag: 'checked', file: 'disposed.txt' } },
      { name: 'http-forward' },
      { name: 'upstream-dialer' },
      { name: 'access-log', options: { path: 'access.log' } },
    ];
    await writeFile(file, JSON.stringify({ plugins }));
    const { code, stdout, stderr } = await runCli(['validate', '--config', file]);
    t.is(code, 0, stderr);
    t.is(stdout, 'ok: 5 plugins\n');
    t.is(stderr, '');
    t.is(readFileSync(path.join(dir, 'disposed.txt'), 'utf8'), 'checked\n', 'the chain was disposed');
    // Opening the log is part of the check, as at start-up; nothing is written to it.
    t.is(readFileSync(path.join(dir, 'access.log'), 'utf8'), '');
  });
});

test('an invalid file: exit 2 with the line start-up prints for it', async (t) => {
  await withTempDir('proxyline-validate-', async (dir) => {
    const file = path.join(dir, 'plugins.json');
    for (const [what, text] of Object.entries(INVALID)) {
      await writeFile(file, text);
      const checked = await runCli(['validate', '--config', file]);
      const started = await runCli(['--port', '0', '--config', file]);
      t.is(started.code, 2, what);
      t.is(checked.code, 2, what);
      t.is(checked.stdout, '', what);
      t.regex(checked.stderr, /^proxyline: \S+plugins\.json: [^\n]+\n$/, what);
      t.is(checked.stderr, started.stderr, what);
    }
    const missing = await runCli(['validate', '--config', path.join(dir, 'none.json')]);
    t.is(missing.code, 2);
    t.is(missing.stderr, `proxyline: ${path.join(dir, 'none.json')}: top level: expected a readable file, found ENOENT\n`);
  });
});

test('a plugin constructed before the error is disposed too', async (t) => {
  await withTempDir('proxyline-validate-', async (dir) => {
    const file = path.join(dir, 'plugins.json');
    const plugins = [
      { name: 'head-parser' },
      { name: 'dispose-marker', module: MARKER, options: { tag: 'built', file: 'disposed.txt' } },
      { name: 'http-forward', options: { via: 'not a token' } },
    ];
    await writeFile(file, JSON.stringify({ plugins }));
    const { code, stderr } = await runCli(['validate', '--config', file]);
    t.is(code, 2);
    t.regex(stderr, /plugins\[2\] \("http-forward"\) options\.via: /);
    t.true(existsSync(path.join(dir, 'disposed.txt')));
    t.is(readFileSync(path.join(dir, 'disposed.txt'), 'utf8'), 'built\n');
  });
});

test('validate --help prints its usage; a stray argument exits 2', async (t) => {
  const help = await runCli(['validate', '--help']);
  t.is(help.code, 0);
  t.true(help.stdout.startsWith('Usage: proxyline validate [--config FILE]\n'));
  const stray = await runCli(['validate', 'plugins.json']);
  t.is(stray.code, 2);
  t.regex(stray.stderr, /^proxyline: validate: .*\(see proxyline validate --help\)\n$/);
  t.is(stray.stdout, '');
});
