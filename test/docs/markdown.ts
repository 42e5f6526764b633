// Just enough Markdown reading for the docs tests: the links a page makes and the anchors its
// headings get on GitHub, sections, and the first table of a section. Code (fenced blocks, inline
// spans) is neither a link, a heading nor a table, so it is left out first. Simple on purpose:
// the pages are ours, and a page the reader cannot follow fails its test.

/** A link as written on a page: where it points and the line it is on (1-based). */
export interface MarkdownLink {
  target: string;
  line: number;
}

/** Blanks fenced code blocks (``` or ~~~), keeping the line count so line numbers stay right. */
function withoutFences(text: string): string[] {
  const lines = text.split('\n');
  let fence: string | undefined;
  return lines.map((line) => {
    const opener = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === undefined) {
      if (!opener) return line;
      fence = opener[1]!;
      return '';
    }
    if (opener && opener[1]![0] === fence[0] && opener[1]!.length >= fence.length && line.trim() === opener[1]) fence = undefined;
    return '';
  });
}

/** Removes inline code spans (`…`, ``…``) from one line. */
const withoutCodeSpans = (line: string): string => line.replace(/(`+)(?:(?!\1).)+?\1/g, '');

/** Every link target on the page: inline links and images, reference definitions, HTML href/src. */
export function markdownLinks(text: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  withoutFences(text).forEach((raw, index) => {
    const line = withoutCodeSpans(raw);
    const found = [
      ...[...line.matchAll(/\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)].map((match) => match[1]!.replace(/^<|>$/g, '')),
      ...[...line.matchAll(/^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/g)].map((match) => match[1]!.replace(/^<|>$/g, '')),
      ...[...line.matchAll(/\s(?:href|src)="([^"]*)"/g)].map((match) => match[1]!),
    ];
    for (const target of found) links.push({ target, line: index + 1 });
  });
  return links;
}

/** Whether a link leaves the repository (http:, https:, mailto:, any scheme, or protocol-relative). */
export const isExternal = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//');

/** The anchor GitHub gives a heading's text: lower case, punctuation dropped, spaces to hyphens. */
export function githubSlug(heading: string): string {
  const rendered = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/<[^>]+>/g, '') // HTML tags
    .replace(/`/g, '') // code spans keep their text
    .replace(/(^|[^\p{L}\p{N}])[*_]+|[*_]+(?=[^\p{L}\p{N}]|$)/gu, '$1'); // emphasis markers
  return rendered
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor on the page: heading slugs (repeats numbered -1, -2, … as GitHub does) and HTML ids/names. */
export function markdownAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const add = (heading: string) => {
    const slug = githubSlug(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  };
  const lines = withoutFences(text);
  lines.forEach((line, index) => {
    const atx = /^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$/.exec(line);
    if (atx) return add(atx[1] ?? '');
    const previous = index > 0 ? lines[index - 1]! : '';
    if (/^ {0,3}(=+|-+)\s*$/.test(line) && previous.trim() !== '' && !/^ {0,3}([#>|*+-]|\d+[.)])/.test(previous)) add(previous.trim());
    for (const match of line.matchAll(/<a\s[^>]*(?:id|name)="([^"]+)"/g)) anchors.add(match[1]!);
  });
  return anchors;
}

/** A pipe table: its header cells and body rows (each a list of trimmed cells), with the line of each row. */
export interface Table {
  readonly header: readonly string[];
  readonly rows: readonly { readonly line: number; readonly cells: readonly string[] }[];
}

/** Lines of a page with their 1-based numbers, fenced code blocks left out (their `|` and `#` are not Markdown). */
export function proseLines(markdown: string): { line: number; text: string }[] {
  const lines: { line: number; text: string }[] = [];
  let fenced = false;
  markdown.split('\n').forEach((text, index) => {
    if (text.trimStart().startsWith('```')) fenced = !fenced;
    else if (!fenced) lines.push({ line: index + 1, text });
  });
  return lines;
}

/** The lines under the `## <title>` heading, up to the next `## ` heading; undefined when there is no such heading. */
export function section(markdown: string, title: string): { line: number; text: string }[] | undefined {
  const lines = proseLines(markdown);
  const start = lines.findIndex(({ text }) => text.trim() === `## ${title}`);
  if (start < 0) return undefined;
  const end = lines.findIndex(({ text }, i) => i > start && text.startsWith('## '));
  return lines.slice(start + 1, end < 0 ? lines.length : end);
}

/** Splits a table row on its unescaped `|` (GFM: a `|` inside a cell, code spans included, is written `\|`). */
export function cells(row: string): string[] {
  const parts = row.trim().split(/(?<!\\)\|/);
  return parts.slice(1, parts.at(-1)?.trim() === '' ? -1 : undefined).map((cell) => cell.trim());
}

/** The first pipe table among `lines` (rows start with `|`), without its `|---|` delimiter row; undefined when none. */
export function firstTable(lines: readonly { line: number; text: string }[]): Table | undefined {
  const start = lines.findIndex(({ text }) => text.trimStart().startsWith('|'));
  if (start < 0) return undefined;
  let end = start;
  while (end < lines.length && lines[end]!.text.trimStart().startsWith('|')) end++;
  const [head, , ...body] = lines.slice(start, end);
  return { header: cells(head!.text), rows: body.map(({ line, text }) => ({ line, cells: cells(text) })) };
}

/** The text of the first code span in `cell` (`` `30000` `` → `30000`), or undefined when the cell has none at its start. */
export function leadingCode(cell: string): string | undefined {
  const match = /^(`+)(.*?)\1(?!`)/.exec(cell.trim());
  return match ? match[2]!.trim() : undefined;
}
