// Keeps docs/plugins/ true to the code: every built-in plugin has a page whose Options table lists exactly the
// options of its manifest's optionsSchema, with the schema's types, bounds and defaults; the index links every
// page; and the pages' links lead somewhere.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import type { JsonSchema } from '../../src/core/plugin.js';
import { BUILT_IN_PLUGINS } from '../../src/plugins/all.js';
import { firstTable, leadingCode, markdownLinks, section } from './markdown.js';

/** The repository root: ava runs from it, whatever folder the compiled tests are in. */
const ROOT = process.cwd();
const PAGES = 'docs/plugins';

const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');
const exists = (file: string): boolean => existsSync(path.join(ROOT, file));

/** What a schema property says about itself, as far as the Options table shows it. */
interface PropertySchema {
  type?: string;
  enum?: readonly unknown[];
  default?: unknown;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
}

function properties(schema: JsonSchema | undefined): Record<string, PropertySchema> {
  return (schema?.properties ?? {}) as Record<string, PropertySchema>;
}

/** Every way the page of `name` disagrees with its manifest's optionsSchema, one sentence each (none: it agrees). */
function optionProblems(name: string, schema: JsonSchema | undefined): string[] {
  const file = `${PAGES}/${name}.md`;
  if (!exists(file)) return [`${file}: missing (every plugin in BUILT_IN_PLUGINS needs a page)`];
  const options = section(read(file), 'Options');
  if (!options) return [`${file}: has no "## Options" section`];
  const schemaOptions = properties(schema);
  const names = Object.keys(schemaOptions);
  const table = firstTable(options);

  if (names.length === 0) {
    const problems: string[] = [];
    if (!options.some(({ text }) => text.trim() === 'No options.'))
      problems.push(`${file}: ${name} has no options; its Options section must say "No options."`);
    if (table) problems.push(`${file}: ${name} has no options, but its Options section has a table (line ${table.rows[0]?.line ?? '?'})`);
    return problems;
  }
  if (!table) return [`${file}: Options section has no table; the schema has ${names.map((n) => `\`${n}\``).join(', ')}`];

  const problems: string[] = [];
  const typeColumn = table.header.findIndex((cell) => /^type/i.test(cell));
  const defaultColumn = table.header.findIndex((cell) => /^default$/i.test(cell));
  if (typeColumn < 0) problems.push(`${file}: Options table has no "Type …" column (header: ${table.header.join(' | ')})`);
  if (defaultColumn < 0) problems.push(`${file}: Options table has no "Default" column (header: ${table.header.join(' | ')})`);

  const documented = new Map<string, readonly string[]>();
  for (const { line, cells } of table.rows) {
    const option = /^`([^`]+)`$/.exec(cells[0] ?? '')?.[1];
    if (option === undefined) problems.push(`${file}:${line}: first column should be an option name in backticks, found "${cells[0] ?? ''}"`);
    else if (documented.has(option)) problems.push(`${file}:${line}: option \`${option}\` is listed twice`);
    else documented.set(option, cells);
  }
  for (const option of names) {
    if (!documented.has(option)) problems.push(`${file}: Options table lacks \`${option}\`, an option of ${name}'s optionsSchema`);
  }
  for (const [option, cells] of documented) {
    const property = schemaOptions[option];
    if (!property) {
      problems.push(`${file}: Options table lists \`${option}\`, which ${name}'s optionsSchema does not have (it has ${names.join(', ')})`);
      continue;
    }
    if (typeColumn >= 0) problems.push(...typeProblems(`${file}: option \`${option}\``, property, cells[typeColumn] ?? ''));
    if (defaultColumn >= 0) problems.push(...defaultProblems(`${file}: option \`${option}\``, property, cells[defaultColumn] ?? ''));
  }
  return problems;
}

/** The type cell must name the schema's type, every enum value (as JSON, in backticks) and the numeric bounds. */
function typeProblems(where: string, property: PropertySchema, cell: string): string[] {
  const problems: string[] = [];
  const say = (what: string) => problems.push(`${where}: type column "${cell}" should ${what}`);
  if (property.type !== undefined && !new RegExp(`\\b${property.type}`).test(cell)) say(`say "${property.type}" (the schema's type)`);
  for (const value of property.enum ?? []) {
    if (!cell.includes(`\`${JSON.stringify(value)}\``)) say(`list \`${JSON.stringify(value)}\` (one of the schema's enum values)`);
  }
  if (property.minimum !== undefined && !cell.includes(`≥ ${property.minimum}`)) say(`say "≥ ${property.minimum}" (the schema's minimum)`);
  if (property.exclusiveMinimum !== undefined && !cell.includes(`> ${property.exclusiveMinimum}`)) {
    say(`say "> ${property.exclusiveMinimum}" (the schema's exclusiveMinimum)`);
  }
  if (property.maximum !== undefined && !cell.includes(`≤ ${property.maximum}`)) say(`say "≤ ${property.maximum}" (the schema's maximum)`);
  return problems;
}

/** The default cell starts with the schema's default as JSON in backticks, or with no code at all when there is none. */
function defaultProblems(where: string, property: PropertySchema, cell: string): string[] {
  const shown = leadingCode(cell);
  if (property.default === undefined) {
    return shown === undefined ? [] : [`${where}: Default column shows \`${shown}\`, but the schema has no default (write e.g. "none (off)")`];
  }
  const expected = JSON.stringify(property.default);
  if (shown === expected) return [];
  return [`${where}: Default column shows ${shown === undefined ? `"${cell}"` : `\`${shown}\``}, expected \`${expected}\` (the schema's default)`];
}

for (const [name, plugin] of BUILT_IN_PLUGINS) {
  test(`${PAGES}/${name}.md lists exactly the options of ${name}'s optionsSchema, with its types and defaults`, (t) => {
    t.deepEqual(optionProblems(name, plugin.manifest.optionsSchema), []);
  });
}

test(`${PAGES}/README.md links the page of every built-in plugin`, (t) => {
  const index = read(`${PAGES}/README.md`);
  const linked = new Set(markdownLinks(index).map(({ target }) => target));
  const missing = [...BUILT_IN_PLUGINS.keys()].filter((name) => !linked.has(`${name}.md`)).map((name) => `${PAGES}/README.md: no link to ${name}.md`);
  t.deepEqual(missing, []);
});

test(`every page in ${PAGES}/ is the page of a built-in plugin (or the index)`, (t) => {
  const strays = readdirSync(path.join(ROOT, PAGES))
    .filter((file) => file.endsWith('.md') && file !== 'README.md' && !BUILT_IN_PLUGINS.has(file.slice(0, -3)))
    .map((file) => `${PAGES}/${file}: no built-in plugin is called ${file.slice(0, -3)}`);
  t.deepEqual(strays, []);
});
