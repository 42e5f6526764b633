// Every relative link in README.md and docs/**/*.md points to a file or folder that exists, and every
// #anchor to a heading of the page it names (GitHub's slugs). External links are not checked.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { githubSlug, isExternal, markdownAnchors, markdownLinks } from './markdown.js';

/** The repository root: ava runs from it. */
const ROOT = process.cwd();

/** The Markdown files under `dir`, recursively (bounded by the tree). */
function markdownFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return markdownFiles(full);
    return entry.name.endsWith('.md') ? [full] : [];
  });
}

const anchorsOf = new Map<string, Set<string>>();
function anchors(file: string): Set<string> {
  let found = anchorsOf.get(file);
  if (!found) anchorsOf.set(file, (found = markdownAnchors(readFileSync(file, 'utf8'))));
  return found;
}

/** The file a link from `page` names (the page itself for `#anchor`), and its anchor if any. */
function resolveLink(page: string, target: string): { file: string; fragment?: string } {
  const hash = target.indexOf('#');
  const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const fragment = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
  // A leading slash starts at the repository root, as on GitHub.
  const file = pathPart === '' ? page : pathPart.startsWith('/') ? path.join(ROOT, pathPart) : path.resolve(path.dirname(page), pathPart);
  return { file, fragment };
}

/** What is wrong with one link from `page`, or undefined when it resolves. */
function problem(page: string, target: string): string | undefined {
  const { file, fragment } = resolveLink(page, target);
  if (!existsSync(file)) return 'no such file';
  if (fragment === undefined || fragment === '') return undefined;
  const markdown = statSync(file).isDirectory() ? path.join(file, 'README.md') : file;
  if (!markdown.endsWith('.md') || !existsSync(markdown)) return undefined; // #L10 on source files and the like
  return anchors(markdown).has(fragment) ? undefined : `no heading #${fragment} in ${path.relative(ROOT, markdown)}`;
}

/** Every broken relative link of the documentation, and how many links were checked. */
function check(): { checked: number; broken: string[]; pages: string[] } {
  const pages = [path.join(ROOT, 'README.md'), ...markdownFiles(path.join(ROOT, 'docs'))];
  let checked = 0;
  const broken: string[] = [];
  for (const page of pages) {
    for (const { target, line } of markdownLinks(readFileSync(page, 'utf8'))) {
      if (isExternal(target)) continue;
      checked++;
      const why = problem(page, target);
      if (!why) continue;
      broken.push(`${path.relative(ROOT, page)}:${line}: ${target} (${why})`);
    }
  }
  return { checked, broken, pages };
}

test('every relative link and anchor in README.md and docs/ (plugin pages included) resolves', (t) => {
  const { checked, broken, pages } = check();
  t.true(pages.length >= 2, `expected README.md and docs/*.md, found ${pages.length} pages`);
  t.true(checked > 20, `expected the pages to link to each other, found ${checked} relative links`);
  t.deepEqual(broken, [], `broken links:\n${broken.join('\n')}`);
});

test('anchors follow GitHub: lower case, punctuation dropped, spaces to hyphens, repeats numbered', (t) => {
  t.is(githubSlug('Refusals keep the connection'), 'refusals-keep-the-connection');
  t.is(githubSlug('`npm run bench:pipeline`'), 'npm-run-benchpipeline');
  t.is(githubSlug('Without decorators (plain JavaScript)'), 'without-decorators-plain-javascript');
  t.is(githubSlug('Accept → head-parser'), 'accept--head-parser');
  t.is(githubSlug('The **life** of a [request](x.md)'), 'the-life-of-a-request');
  t.is(githubSlug('max_idle and _emphasis_'), 'max_idle-and-emphasis');
  t.deepEqual([...markdownAnchors('# A\n\n## A\n\n```\n# not a heading\n```\n\nSetext\n---\n')], ['a', 'a-1', 'setext']);
});

test('links are read from text, never from code, and external ones are told apart', (t) => {
  const page = ['[one](a.md#x) and ![img](b.png "title")', '`[code](no.md)`', '```', '[fenced](no.md)', '```', '[ref]: <c d.md>', '<a href="e.md">e</a>'].join(
    '\n',
  );
  t.deepEqual(
    markdownLinks(page).map(({ target, line }) => `${line}:${target}`),
    ['1:a.md#x', '1:b.png', '6:c d.md', '7:e.md'],
  );
  t.true(isExternal('https://example.com/'));
  t.true(isExternal('mailto:someone@example.com'));
  t.false(isExternal('docs/errors.md#errors'));
});

test('a link to a missing file or heading is reported', (t) => {
  t.is(problem(path.join(ROOT, 'README.md'), 'docs/no-such-page.md'), 'no such file');
  t.is(problem(path.join(ROOT, 'README.md'), '#no-such-heading'), 'no heading #no-such-heading in README.md');
  t.is(problem(path.join(ROOT, 'README.md'), '#using-it'), undefined);
});
