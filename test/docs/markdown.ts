// Just enough Markdown reading for the docs tests: sections, the first table of a section, links.
// Simple on purpose: the pages are ours, and a page the reader cannot follow fails its test.

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

/** Link targets of the prose (inline code removed first, so a `](` in code is not a link). */
export function linkTargets(markdown: string): { line: number; target: string }[] {
  const links: { line: number; target: string }[] = [];
  for (const { line, text } of proseLines(markdown)) {
    const prose = text.replace(/``.*?``|`[^`]*`/g, '');
    for (const match of prose.matchAll(/\]\(([^)\s]+)\)/g)) links.push({ line, target: match[1]! });
  }
  return links;
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as `-`. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*)$/.exec(text);
    if (heading) anchors.add(heading[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return anchors;
}
