// The layering of src, checked on the sources: the core depends on no plugin and no transport
// (they depend on it, through the interfaces it owns, such as src/core/transport.ts), and no
// files import each other, directly or round a longer cycle.
import test from 'ava';
import { findCycles, importGraph, importSpecifiers, resolveRelative } from './helpers/imports.js';
import { ROOT } from './helpers/net.js';

test('importSpecifiers sees imports of every kind, and none in comments or strings', (t) => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    "import './side-effect.js';",
    "export * from './c.js';",
    "export { d } from './d.js';",
    "const e = await import('./e.js');",
    "// import { f } from './f.js';",
    'const g = "import { g } from \'./g.js\'";',
  ].join('\n');
  t.deepEqual(importSpecifiers(text).sort(), ['../b.js', './a.js', './c.js', './d.js', './e.js', './side-effect.js']);
});

test('resolveRelative maps a .js specifier to its .ts source', (t) => {
  t.is(resolveRelative(ROOT, 'src/core/server.ts', './transport.js'), 'src/core/transport.ts');
  t.is(resolveRelative(ROOT, 'src/core/server.ts', '../plugins/index.js'), 'src/plugins/index.ts');
  t.is(resolveRelative(ROOT, 'src/core/server.ts', './missing.js'), undefined);
});

test('findCycles reports a cycle once, in import order, and nothing for a graph without one', (t) => {
  const cyclic = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a', 'd']],
    ['d', []],
    ['e', ['a', 'e']],
  ]);
  t.deepEqual(findCycles(cyclic), [['a', 'b', 'c'], ['e']]);
  t.deepEqual(
    findCycles(
      new Map([
        ['a', ['b', 'c']],
        ['b', ['c']],
        ['c', []],
      ]),
    ),
    [],
  );
});

test('src/core imports nothing from src/plugins or src/transports', (t) => {
  const graph = importGraph(ROOT, 'src');
  const core = [...graph.keys()].filter((file) => file.startsWith('src/core/'));
  t.true(core.length > 10, 'the core files are read');
  const outward = core.flatMap((file) =>
    graph
      .get(file)!
      .filter((target) => /^src\/(plugins|transports)\//.test(target))
      .map((target) => `${file} imports ${target}`),
  );
  t.deepEqual(outward, []);
});

test('no import cycle among the files of src', (t) => {
  const graph = importGraph(ROOT, 'src');
  t.true(graph.size > 50, 'every source file is read');
  t.deepEqual(
    findCycles(graph).map((cycle) => [...cycle, cycle[0]].join(' -> ')),
    [],
  );
});
