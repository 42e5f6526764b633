import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { loadConfig, parseConfig } from '../../src/core/config.js';
import { ProxyError } from '../../src/core/errors.js';
import { withTempDir } from '../helpers/temp.js';

const failure = (t: import('ava').ExecutionContext, json: unknown) => t.throws(() => parseConfig(json, 'p.json'), { instanceOf: ProxyError })?.message;

test('the repository plugins.json loads with its folder as base', async (t) => {
  const config = await loadConfig('plugins.json');
  t.is(config.baseDir, process.cwd());
  t.true(config.entries.length >= 5);
  t.is(config.entries[0]?.name, 'head-parser');
});

test('shape errors name the path, what was expected and what was found', (t) => {
  t.is(failure(t, []), 'p.json: top level: expected an object with a "plugins" array, found an array');
  t.is(failure(t, { plugin: [] }), 'p.json: plugin: expected no such field, found it set');
  t.is(failure(t, { plugins: {} }), 'p.json: plugins: expected an array, found an object');
  t.is(failure(t, { plugins: ['head-parser'] }), 'p.json: plugins[0]: expected an object like { "name": "head-parser" }, found "head-parser"');
  t.is(failure(t, { plugins: [{ nme: 'x' }] }), 'p.json: plugins[0].nme: expected one of name, module, options, found "nme"');
  t.is(failure(t, { plugins: [{ name: 3 }] }), 'p.json: plugins[0].name: expected a plugin name, found 3');
  t.is(failure(t, { plugins: [{ name: 'a', module: '' }] }), 'p.json: plugins[0].module: expected a module path, found ""');
  t.is(failure(t, { plugins: [{ name: 'a', options: [1] }] }), 'p.json: plugins[0].options: expected an object, found an array');
  t.is(failure(t, { plugins: [{ name: 'a', options: null }] }), 'p.json: plugins[0].options: expected an object, found null');
  t.deepEqual(parseConfig({ $schema: './x.json', plugins: [{ name: 'a' }] }, 'p.json'), [{ name: 'a' }]);
});

test('unreadable files and invalid JSON are config errors', async (t) => {
  await withTempDir('proxyline-config-', async (dir) => {
    const missing = await t.throwsAsync(loadConfig(path.join(dir, 'none.json')), { instanceOf: ProxyError });
    t.regex(missing?.message ?? '', /none\.json: top level: expected a readable file, found ENOENT$/);
    await writeFile(path.join(dir, 'bad.json'), '{ "plugins": [ }');
    const bad = await t.throwsAsync(loadConfig(path.join(dir, 'bad.json')), { instanceOf: ProxyError });
    t.regex(bad?.message ?? '', /bad\.json: invalid JSON: /);
    t.is(bad?.code, 'ERR_PROXY_CONFIG');
  });
});
