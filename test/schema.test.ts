import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { Ajv } from 'ajv';
import { parseConfig } from '../src/core/config.js';
import { ProxyError } from '../src/core/errors.js';
import { pluginsJsonSchema } from '../src/core/schema.js';
import { BUILT_IN_PLUGINS } from '../src/plugins/all.js';
import { ROOT } from './helpers/net.js';

const readJson = (file: string): unknown => JSON.parse(readFileSync(path.join(ROOT, file), 'utf8'));
const schema = pluginsJsonSchema(BUILT_IN_PLUGINS);
const validate = new Ajv({ strict: true, allErrors: true }).compile(schema);

test('the committed plugins.schema.json is what the built-in manifests produce', (t) => {
  // If this fails, regenerate it with the command in docs/configuration.md (Editor support).
  t.deepEqual(readJson('plugins.schema.json'), JSON.parse(JSON.stringify(schema)));
});

test('the schema lists every built-in plugin by name', (t) => {
  const items = (schema as { properties: { plugins: { items: { anyOf: { properties: { name: { const?: string } } }[] } } } }).properties.plugins.items.anyOf;
  const names = items.map((item) => item.properties.name.const).filter(Boolean);
  t.deepEqual(names, [...BUILT_IN_PLUGINS.keys()]);
});

for (const file of ['plugins.json', 'examples/tagger/plugins.json']) {
  test(`${file} validates against the schema`, (t) => {
    t.true(validate(readJson(file)), JSON.stringify(validate.errors));
  });
}

// Each of these is refused by the loader or the registry at start-up, and must be refused by the schema too.
const bad: [string, unknown][] = [
  ['an extra top-level key', { plugins: [], extra: 1 }],
  ['no plugins array', { $schema: './plugins.schema.json' }],
  ['an entry that is a string', { plugins: ['head-parser'] }],
  ['an unknown built-in name', { plugins: [{ name: 'head-parsr' }] }],
  ['an empty name', { plugins: [{ name: '' }] }],
  ['an extra key in an entry', { plugins: [{ name: 'logger', option: { format: 'json' } }] }],
  ['an option of the wrong type', { plugins: [{ name: 'head-parser', options: { maxHeaderBytes: '64k' } }] }],
  ['an option below its minimum', { plugins: [{ name: 'head-parser', options: { maxHeaderBytes: 10 } }] }],
  ['an option outside its enum', { plugins: [{ name: 'logger', options: { format: 'yaml' } }] }],
  ['an unknown option', { plugins: [{ name: 'byte-counter', options: { every: 1 } }] }],
  ['options that are not an object', { plugins: [{ name: 'my-plugin', module: './my.js', options: [1] }] }],
  ['an empty module path', { plugins: [{ name: 'my-plugin', module: '' }] }],
];
for (const [what, config] of bad) {
  test(`the schema refuses ${what}`, (t) => {
    t.false(validate(config));
  });
}

test('the schema accepts a user module entry with free-form options and a built-in twice', (t) => {
  const config = {
    plugins: [
      { name: 'head-parser' },
      { name: 'my-plugin', module: './my.plugin.js', options: { anything: [1, { deep: true }] } },
      { name: 'logger', options: { format: 'json' } },
      { name: 'logger', options: { format: 'text' } },
    ],
  };
  t.true(validate(config), JSON.stringify(validate.errors));
});

test('what the schema refuses for its shape, the loader refuses too', (t) => {
  for (const [what, config] of bad.slice(0, 3)) {
    const error = t.throws(() => parseConfig(config, 'plugins.json'), { instanceOf: ProxyError }, what);
    t.is(error?.code, 'ERR_PROXY_CONFIG');
  }
});
