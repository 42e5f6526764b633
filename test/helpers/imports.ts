// The import graph of the TypeScript sources, read from the files themselves (not from the
// compiled output, where type-only imports are gone), for tests that hold the layering.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Every module specifier `text` imports: static imports (type-only ones too), re-exports
 * (`export … from`) and dynamic `import('…')`; those in comments and strings are not.
 */
export function importSpecifiers(text: string): string[] {
  return ts.preProcessFile(text, true, false).importedFiles.map((file) => file.fileName);
}

/** Every `.ts` file under `dir` (relative to `root`, with `/` separators), sorted. */
export function sourceFiles(root: string, dir: string): string[] {
  const entries = readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' });
  return entries
    .filter((entry) => entry.endsWith('.ts') && !entry.endsWith('.d.ts'))
    .map((entry) => path.posix.join(dir, entry.split(path.sep).join('/')))
    .sort();
}

/**
 * The file a relative specifier of `from` names (`./x.js` is `./x.ts` in the sources), relative to
 * `root`; undefined when it names no file there.
 */
export function resolveRelative(root: string, from: string, specifier: string): string | undefined {
  const base = path.posix.join(path.posix.dirname(from), specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, path.posix.join(base, 'index.ts')];
  return candidates.find((candidate) => existsSync(path.join(root, candidate)));
}

/** An import graph: each file and the files it imports. */
export type ImportGraph = Map<string, string[]>;

/**
 * The graph of relative imports among the `.ts` files under `dir`. Throws when a relative
 * specifier names no file, so that nothing is silently left out.
 */
export function importGraph(root: string, dir: string): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of sourceFiles(root, dir)) {
    const targets = new Set<string>();
    for (const specifier of importSpecifiers(readFileSync(path.join(root, file), 'utf8'))) {
      if (!specifier.startsWith('.')) continue;
      const target = resolveRelative(root, file, specifier);
      if (target === undefined) throw new Error(`${file}: cannot resolve ${specifier}`);
      targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/**
 * Cycles of the graph: at least one per group of files that reach each other (each as the files
 * in import order, the first importing the second, …, the last importing the first).
 */
export function findCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      const seen = state.get(next);
      if (seen === 'open') cycles.push(stack.slice(stack.indexOf(next)));
      else if (seen === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}
