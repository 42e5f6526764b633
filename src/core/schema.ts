import type { JsonSchema, PluginClass } from './plugin.js';

/** The JSON Schema dialect of plugins.schema.json: draft-07, which VS Code and ajv's default class both understand. */
export const SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#';

/**
 * The JSON Schema of plugins.json, built from the manifests of a plugin catalog (the repository's
 * plugins.schema.json is `pluginsJsonSchema(BUILT_IN_PLUGINS)`). It refuses what the loader
 * (core/config.ts) and the registry refuse: extra keys at the top and in entries, an unknown
 * built-in name, built-in options that break the plugin's schema. Order constraints (`after`,
 * `before`) are beyond JSON Schema; they are listed in each entry's description and checked at start-up.
 */
export function pluginsJsonSchema(catalog: ReadonlyMap<string, PluginClass>): JsonSchema {
  const builtIns = [...catalog.values()].map(({ manifest }) => ({
    title: manifest.name,
    description: describe(manifest.name, manifest.after, manifest.before),
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { const: manifest.name },
      options: manifest.optionsSchema ? structuredClone(manifest.optionsSchema) : { type: 'object' },
    },
  }));
  const userModule = {
    title: 'module',
    description: "A user's plugin: an ES module exporting a plugin class whose static manifest.name is `name`.",
    type: 'object',
    additionalProperties: false,
    required: ['name', 'module'],
    properties: {
      name: { type: 'string', minLength: 1, description: 'manifest.name of the exported plugin class.' },
      module: { type: 'string', minLength: 1, description: 'Path of the ES module, relative to this file.' },
      options: { type: 'object', description: "Checked at start-up against the plugin's own optionsSchema." },
    },
  };
  return {
    $schema: SCHEMA_DIALECT,
    title: 'proxyline plugins.json',
    description: 'The plugin chain: array order is the inbound order (client → upstream); outbound runs in reverse.',
    type: 'object',
    additionalProperties: false,
    required: ['plugins'],
    properties: {
      $schema: { type: 'string' },
      plugins: {
        type: 'array',
        items: { anyOf: [...builtIns, userModule] },
      },
    },
  };
}

function describe(name: string, after: readonly string[] = [], before: readonly string[] = []): string {
  const rules = [
    ...(after.length ? [`needs ${after.map((n) => `"${n}"`).join(', ')} earlier in the chain`] : []),
    ...(before.length ? [`must come before ${before.map((n) => `"${n}"`).join(', ')} when present`] : []),
  ];
  return `Built-in plugin "${name}"${rules.length ? `; ${rules.join('; ')}` : ''}.`;
}
