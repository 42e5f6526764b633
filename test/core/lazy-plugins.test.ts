import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);

/** In a fresh process: build a proxy from `plugins`, then say whether prom-client, sonic-boom (access-log's) and bcryptjs were loaded. */
async function loadedLibraries(plugins: unknown[]): Promise<Record<string, boolean>> {
  const script = `
    import 'reflect-metadata';
    import { createRequire } from 'node:module';
    const { createProxy } = await import('./dist/src/proxy.js');
    await createProxy({ plugins: ${JSON.stringify(plugins)}, port: 0 });
    const cache = Object.keys(createRequire(import.meta.url).cache);
    const has = (name) => cache.some((file) => file.includes('/node_modules/' + name + '/'));
    console.log(JSON.stringify({ promClient: has('prom-client'), sonicBoom: has('sonic-boom'), bcryptjs: has('bcryptjs') }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
  return JSON.parse(stdout) as Record<string, boolean>;
}

test('the default chain loads none of the production plugins’ libraries', async (t) => {
  t.deepEqual(await loadedLibraries(['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer', 'byte-counter', 'logger']), {
    promClient: false,
    sonicBoom: false,
    bcryptjs: false,
  });
});

test('a production plugin named in the chain is loaded on demand', async (t) => {
  const loaded = await loadedLibraries([
    'head-parser',
    'http-forward',
    'upstream-dialer',
    'byte-counter',
    { name: 'access-log', options: { path: '/dev/null' } },
    'metrics',
  ]);
  t.true(loaded.sonicBoom);
  t.true(loaded.promClient);
  t.false(loaded.bcryptjs);
});
