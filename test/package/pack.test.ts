// The package as a user gets it: `npm pack` (which runs `prepare`), installed offline into a fresh
// project that has a plugin of its own, then run through its CLI and imported by a script.
import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { proxiedRequest, ROOT, startHttpOrigin } from '../helpers/net.js';
import { seededLockfile } from './offline-lock.js';

/** What a git checkout needs to build the package: the committed sources and configs, not dist/. */
const SOURCES = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'plugins.json', 'plugins.schema.json', 'src'];
/** The user's project files (a plugin, a plugins.json naming it by module path, a script using the API). */
const APP_FIXTURES = path.join(ROOT, 'test/fixtures/package-app');
/** The files of the user's project, copied next to its node_modules. */
const APP_FILES = ['stamp.plugin.js', 'plugins.json', 'use-api.js'];
/** Each npm or node run is killed after this; a cold tsc on a loaded machine stays well under it. */
const STEP_TIMEOUT_MS = 90_000;

/**
 * The environment of npm and the children: the parent npm's `npm_*` variables dropped (they
 * describe this repository, not the temporary projects) except where the cache is, no update
 * check (it would go to the network), and no V8 coverage (c8 would collect npm's and tsc's).
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false' };
  for (const key of Object.keys(env)) {
    if (/^npm_/i.test(key) && !/^npm_config_(cache|userconfig|globalconfig|update_notifier)$/i.test(key)) delete env[key];
  }
  delete env.NODE_V8_COVERAGE;
  return env;
}

/** Runs a command to its end (killed after STEP_TIMEOUT_MS); rejects with its output when it fails. */
function run(command: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: childEnv(), timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Starts the installed CLI on 127.0.0.1:0 and resolves its port once it prints its listening line. */
async function startCli(bin: string, cwd: string, children: ChildProcess[]): Promise<number> {
  const child = spawn(bin, ['--host', '127.0.0.1', '--port', '0', '--config', 'plugins.json'], { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 10_000) stderr += chunk.toString();
  });
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the installed CLI did not start; stderr: ${stderr}`)), STEP_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the installed CLI exited with ${code}; stderr: ${stderr}`));
    });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /proxyline listening on http:\/\/127\.0\.0\.1:(\d+)\n/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
}

test('npm pack gives a package that installs offline, whose CLI and API run a plugin of the installing project', async (t) => {
  t.timeout(4 * STEP_TIMEOUT_MS);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'proxyline-pack-'));
  const children: ChildProcess[] = [];
  // The origin answers with the X-Stamp field it received: the user's plugin adds it.
  const origin = await startHttpOrigin((request, response) => response.end(JSON.stringify({ stamp: request.headers['x-stamp'] ?? null })));
  try {
    // A copy of the sources with the repository's node_modules: `prepare` builds there, never in
    // this checkout's dist/ (which the other test files are running from).
    const source = path.join(tmp, 'source');
    mkdirSync(source);
    for (const entry of SOURCES) cpSync(path.join(ROOT, entry), path.join(source, entry), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(source, 'node_modules'), 'dir');

    const packStart = performance.now();
    const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], source);
    const packSeconds = (performance.now() - packStart) / 1000;
    const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
    const paths = files.map((file) => file.path);
    t.deepEqual(
      paths.filter((file) => !file.startsWith('dist/src/')),
      ['README.md', 'package.json', 'plugins.json', 'plugins.schema.json'],
      'the tarball holds the build of src/ and the files a user reads, nothing else',
    );
    t.true(paths.includes('dist/src/index.js') && paths.includes('dist/src/index.d.ts') && paths.includes('dist/src/cli.js'), 'prepare built the entry points');

    const app = path.join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }, null, 2));
    writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify(seededLockfile(ROOT, 'app'), null, 2));
    const installStart = performance.now();
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(tmp, filename)], app);
    const installSeconds = (performance.now() - installStart) / 1000;
    t.log(`npm pack (prepare's tsc included) ${packSeconds.toFixed(1)} s, npm install --offline ${installSeconds.toFixed(1)} s`);

    const installed = path.join(app, 'node_modules/proxyline');
    const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as { exports: { '.': { types: string } } };
    t.true(existsSync(path.join(installed, manifest.exports['.'].types)), 'the types the exports map names are installed');
    for (const file of APP_FILES) cpSync(path.join(APP_FIXTURES, file), path.join(app, file));

    // The CLI through the bin link npm made, loading the project's plugin from its plugins.json.
    const port = await startCli(path.join(app, 'node_modules/.bin/proxyline'), app, children);
    const viaCli = await proxiedRequest(port, `http://127.0.0.1:${origin.port}/cli`);
    t.is(viaCli.status, 200);
    t.deepEqual(JSON.parse(viaCli.body.toString()), { stamp: 'from-the-cli' });

    // The API imported by the project's own script, with no reflect-metadata import of its own.
    const viaApi = await run(process.execPath, ['use-api.js', String(origin.port)], app);
    t.deepEqual(JSON.parse(viaApi.stdout), { stamp: 'from-the-api' }, viaApi.stderr);
  } finally {
    for (const child of children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    await origin.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
