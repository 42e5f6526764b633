import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ProxyError } from './errors.js';
import type { PluginEntry } from './registry.js';

/** plugins.json as loaded: the entries in order, and the folder their module paths start from. */
export interface LoadedConfig {
  /** The `plugins` list, shape-checked, in chain order. */
  entries: PluginEntry[];
  /** The config file's folder: `module` paths and plugins' relative file options start there. */
  baseDir: string;
  /** The file's path, for messages. */
  source: string;
}

const ENTRY_KEYS = new Set(['name', 'module', 'options']);

/** Reads and checks the shape of a plugins.json file; plugin options are checked by the registry. */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  const source = path.resolve(file);
  let text: string;
  try {
    text = await readFile(source, 'utf8');
  } catch (error) {
    throw fail(source, '', `a readable file, found ${(error as NodeJS.ErrnoException).code ?? 'an error'}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ProxyError('ERR_PROXY_CONFIG', `${source}: invalid JSON: ${(error as Error).message}`);
  }
  return { entries: parseConfig(json, source), baseDir: path.dirname(source), source };
}

/** Checks the parsed JSON of a plugins.json file and returns its entries. */
export function parseConfig(json: unknown, source: string): PluginEntry[] {
  if (!isObject(json)) throw fail(source, '', `an object with a "plugins" array, found ${kind(json)}`);
  for (const key of Object.keys(json)) {
    if (key !== 'plugins' && key !== '$schema') throw fail(source, `.${key}`, `no such field, found it set`);
  }
  const plugins = json.plugins;
  if (!Array.isArray(plugins)) throw fail(source, '.plugins', `an array, found ${kind(plugins)}`);
  return plugins.map((entry, index) => {
    const at = `.plugins[${index}]`;
    if (!isObject(entry)) throw fail(source, at, `an object like { "name": "head-parser" }, found ${kind(entry)}`);
    for (const key of Object.keys(entry)) {
      if (!ENTRY_KEYS.has(key)) throw fail(source, `${at}.${key}`, `one of name, module, options, found "${key}"`);
    }
    if (typeof entry.name !== 'string' || entry.name === '') throw fail(source, `${at}.name`, `a plugin name, found ${kind(entry.name)}`);
    if (entry.module !== undefined && (typeof entry.module !== 'string' || entry.module === '')) {
      throw fail(source, `${at}.module`, `a module path, found ${kind(entry.module)}`);
    }
    if (entry.options !== undefined && !isObject(entry.options)) throw fail(source, `${at}.options`, `an object, found ${kind(entry.options)}`);
    return entry as unknown as PluginEntry;
  });
}

function fail(source: string, at: string, expectedFound: string): ProxyError {
  return new ProxyError('ERR_PROXY_CONFIG', `${source}: ${at ? at.slice(1) : 'top level'}: expected ${expectedFound}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kind(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : JSON.stringify(value);
}
