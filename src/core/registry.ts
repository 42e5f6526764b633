import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { DependencyContainer } from 'tsyringe';
import { ProxyError } from './errors.js';
import { PluginBaseDir, PluginOptions, type PluginClass, type ProxyPlugin } from './plugin.js';

/** One entry of plugins.json: a built-in name, or a user's module, with options. */
export interface PluginEntry {
  /** Built-in plugin name, or the manifest name of the class a `module` exports. */
  name: string;
  /** Path of an ES module exporting a plugin class, relative to the config file. */
  module?: string;
  /** Options, validated against the plugin's schema (defaults filled in). */
  options?: unknown;
}

/** What a plugin list given in code may hold: names, entries, classes (with options) or instances. */
export type PluginSpec = string | PluginEntry | PluginClass | PluginWithOptions | ProxyPlugin;

/** A plugin class given in code with its options, checked against its schema like a plugins.json entry's. */
export interface PluginWithOptions {
  /** The class to construct. */
  plugin: PluginClass;
  /** Its options; the schema's defaults fill in what is missing. */
  options?: unknown;
}

/** Built-in plugins by name: a class, or a loader that imports it when a chain names it. */
export type PluginCatalog = ReadonlyMap<string, PluginClass | (() => Promise<PluginClass>)>;

/** Where plugin specs are resolved from. */
export interface RegistryOptions {
  /** Built-in plugins by name. */
  catalog: PluginCatalog;
  /** Container holding the services; each plugin gets a child of it. */
  container: DependencyContainer;
  /** Folder that `module` paths are relative to. */
  baseDir: string;
  /** Names the list in error messages, e.g. the config file's path. */
  source: string;
}

const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: true });
const validators = new WeakMap<PluginClass, ValidateFunction>();

const configError = (message: string) => new ProxyError('ERR_PROXY_CONFIG', message);

/**
 * Turns a plugin list into plugin instances, in order: loads user modules, validates options,
 * constructs each plugin in its own child container (so one plugin may appear twice with
 * different options), then checks every declared order constraint. Fails with ERR_PROXY_CONFIG
 * naming the entry, the field, what was expected and what was found.
 */
export async function resolvePlugins(specs: readonly PluginSpec[], options: RegistryOptions): Promise<ProxyPlugin[]> {
  return (await resolveChain(specs, options)).map(({ plugin }) => plugin);
}

/** A plugin as {@link resolveChain} resolved it, with the options it was given. */
export interface ResolvedPlugin {
  /** The instance. */
  readonly plugin: ProxyPlugin;
  /** Its options after validation, the schema's defaults filled in; undefined for an instance given in code. */
  readonly options: unknown;
}

/**
 * {@link resolvePlugins}, keeping each plugin's effective options (for `proxyline print-pipeline`).
 * On a failure, the plugins it constructed so far are disposed before it rejects: a reload that
 * fails leaves no file open and no admin route registered behind it.
 */
export async function resolveChain(specs: readonly PluginSpec[], options: RegistryOptions): Promise<ResolvedPlugin[]> {
  const resolved: Resolved[] = [];
  try {
    await resolveEach(specs, options, resolved);
    return checkOrder(resolved);
  } catch (error) {
    await Promise.all(resolved.filter(({ cls }) => cls).map(({ plugin }) => disposeQuietly(plugin)));
    throw error;
  }
}

interface Resolved extends ResolvedPlugin {
  /** Its class when the registry constructed it (then the registry disposes it on a failure). */
  readonly cls?: PluginClass;
  readonly where: string;
}

/** Resolves the specs in order into `resolved` (so a failure can dispose the ones before it). */
async function resolveEach(specs: readonly PluginSpec[], options: RegistryOptions, resolved: Resolved[]): Promise<void> {
  for (const [index, spec] of specs.entries()) {
    const label = describe(spec);
    const where = `${options.source}: plugins[${index}]${label ? ` ("${label}")` : ''}`;
    resolved.push(await resolveOne(spec, where, options));
  }
}

/** Disposes a plugin of a chain that failed to resolve; its own failure would only hide the real one. */
async function disposeQuietly(plugin: ProxyPlugin): Promise<void> {
  try {
    await plugin.dispose?.();
  } catch {
    // the resolution error is the one reported
  }
}

/** Checks every declared order constraint. */
function checkOrder(resolved: Resolved[]): Resolved[] {
  const names = resolved.map(({ plugin }) => plugin.name);
  for (const [index, { cls, where }] of resolved.entries()) {
    for (const earlier of cls?.manifest.after ?? []) {
      const at = names.indexOf(earlier);
      if (at < 0 || at > index) {
        throw configError(`${where}: expected "${earlier}" earlier in the chain, found ${at < 0 ? 'it missing' : `it at plugins[${at}]`}`);
      }
    }
    for (const later of cls?.manifest.before ?? []) {
      const at = names.indexOf(later);
      if (at >= 0 && at < index) throw configError(`${where}: expected "${later}" later in the chain, found it at plugins[${at}]`);
    }
  }
  return resolved;
}

function describe(spec: PluginSpec): string {
  if (typeof spec === 'string') return spec;
  if (typeof spec === 'function') return spec.manifest?.name ?? spec.name;
  if ('plugin' in spec && typeof spec.plugin === 'function') return spec.plugin.manifest?.name ?? '';
  return typeof (spec as { name?: unknown }).name === 'string' ? (spec as { name: string }).name : '';
}

async function resolveOne(spec: PluginSpec, where: string, options: RegistryOptions) {
  if (typeof spec === 'string') return construct(await builtIn(spec, where, options), undefined, where, options);
  if (typeof spec === 'function') return construct(checkClass(spec, where), undefined, where, options);
  if ('plugin' in spec && typeof spec.plugin === 'function') return construct(checkClass(spec.plugin, where), spec.options, where, options);
  if (isInstance(spec)) return { plugin: spec, options: undefined, where };
  const entry = spec as PluginEntry;
  const cls = entry.module ? await load(entry, where, options) : await builtIn(entry.name, where, options);
  return construct(cls, entry.options, where, options);
}

function isInstance(spec: object): spec is ProxyPlugin {
  return 'inbound' in spec || 'outbound' in spec || 'onExchangeEnd' in spec || 'onClose' in spec;
}

async function builtIn(name: string, where: string, options: RegistryOptions): Promise<PluginClass> {
  const entry = options.catalog.get(name);
  if (!entry) {
    const known = [...options.catalog.keys()].join(', ');
    throw configError(`${where} name: expected a built-in plugin (${known}) or a "module", found "${name}"`);
  }
  return 'manifest' in entry ? entry : entry();
}

async function load(entry: PluginEntry, where: string, options: RegistryOptions): Promise<PluginClass> {
  const file = path.resolve(options.baseDir, entry.module as string);
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw configError(`${where} module: expected a loadable ES module, found ${file} failing: ${(error as Error).message}`);
  }
  const candidates = [exports.default, ...Object.values(exports)].filter(
    (value): value is PluginClass => typeof value === 'function' && typeof (value as PluginClass).manifest === 'object',
  );
  const cls = candidates.find((candidate) => candidate.manifest.name === entry.name);
  if (!cls) {
    const found = candidates.length ? `classes named ${candidates.map((c) => `"${c.manifest.name}"`).join(', ')}` : 'no plugin class';
    throw configError(`${where} module: expected a class with static manifest.name "${entry.name}" exported by ${file}, found ${found}`);
  }
  return cls;
}

function checkClass(cls: PluginClass, where: string): PluginClass {
  if (typeof cls.manifest?.name !== 'string') throw configError(`${where}: expected a plugin class with a static manifest, found ${cls.name}`);
  return cls;
}

function construct(cls: PluginClass, rawOptions: unknown, where: string, options: RegistryOptions) {
  const pluginOptions = validateOptions(cls, rawOptions, where);
  const child = options.container.createChildContainer();
  child.register(PluginOptions, { useValue: pluginOptions });
  child.register(PluginBaseDir, { useValue: options.baseDir });
  let plugin: ProxyPlugin;
  try {
    plugin = child.resolve(cls);
  } catch (error) {
    throw configError(`${where}: cannot construct ${cls.name}: ${(error as Error).message}`);
  }
  return { plugin, options: pluginOptions, cls, where };
}

function validateOptions(cls: PluginClass, raw: unknown, where: string): unknown {
  const value = raw === undefined ? {} : structuredClone(raw);
  const schema = cls.manifest.optionsSchema;
  if (!schema) return value;
  let validate = validators.get(cls);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(cls, validate);
  }
  if (!validate(value)) throw configError(`${where} options${formatAjvError(validate.errors![0]!, value)}`);
  return value;
}

/** `.field: expected X, found Y` from a schema error of `root` (the path relative to it); also used by plugins' admin routes. */
export function formatAjvError(error: ErrorObject, root: unknown): string {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  const found = segments.reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], root);
  const at = segments.map((key) => (/^\d+$/.test(key) ? `[${key}]` : `.${key}`)).join('');
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `${at}: expected no option "${String(params.additionalProperty)}", found it set`;
    case 'required':
      return `${at}.${String(params.missingProperty)}: expected a value, found none`;
    case 'enum':
      return `${at}: expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, found ${JSON.stringify(found)}`;
    default: {
      // ajv says "must be integer", "must be >= 1", "must match pattern …"
      const expected = (error.message ?? 'to match the schema').replace(/^must be /, '').replace(/^must /, 'to ');
      return `${at}: expected ${expected}, found ${JSON.stringify(found)}`;
    }
  }
}
