import { readFileSync } from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { localReply, type LocalReply } from 'proxyline';

/** One entry of a routes file, as written. */
export interface RouteConfig {
  /** The request method it answers (`GET` also answers `HEAD`); absent or `*`: any method. */
  method?: string;
  /** A glob on the request's absolute URL, normalised (`http://api.example/users/*`). */
  url: string;
  /** The status of the answer: 200 unless given. */
  status?: number;
  /** Header fields of the answer; an array gives a field several times. Content-Length is computed. */
  headers?: Record<string, string | string[]>;
  /** The body, as UTF-8 text. */
  body?: string;
  /** Or: a file whose bytes are the body, relative to the routes file. */
  bodyFile?: string;
}

/** A route ready to answer: its reply is built once and shared by every request it answers. */
export interface Route {
  /** Its place in the routes file, from 0 (for messages). */
  readonly index: number;
  /** The method it answers, upper-case; undefined for any. */
  readonly method?: string;
  /** Whether a normalised absolute URL matches its glob. */
  readonly matches: (url: string) => boolean;
  /** The answer. */
  readonly reply: LocalReply;
}

const KEYS = new Set(['method', 'url', 'status', 'headers', 'body', 'bodyFile']);

/**
 * Reads and checks a routes file (a JSON array of {@link RouteConfig}) at start-up. Bodies are read
 * now, not per request. Throws naming the file, the entry and the field for anything wrong, so
 * the proxy does not start with a route that cannot answer.
 */
export function loadRoutes(file: string): Route[] {
  let entries: unknown;
  try {
    entries = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`routes file ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(entries)) throw new Error(`routes file ${file}: expected an array of routes, found ${typeof entries}`);
  return entries.map((entry, index) => toRoute(entry, index, file));
}

function toRoute(entry: unknown, index: number, file: string): Route {
  const at = `routes file ${file}[${index}]`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new Error(`${at}: expected an object, found ${JSON.stringify(entry)}`);
  const config = entry as RouteConfig;
  for (const key of Object.keys(config)) if (!KEYS.has(key)) throw new Error(`${at}: unknown field "${key}"`);
  if (typeof config.url !== 'string' || config.url === '')
    throw new Error(`${at}.url: expected a glob on the absolute URL, found ${JSON.stringify(config.url)}`);
  const options = { dot: true, strictBrackets: true };
  try {
    picomatch.makeRe(config.url, options);
  } catch (error) {
    throw new Error(`${at}.url: expected a glob, found ${JSON.stringify(config.url)}: ${(error as Error).message}`, { cause: error });
  }
  if (config.method !== undefined && (typeof config.method !== 'string' || !/^(\*|[A-Za-z]+)$/.test(config.method))) {
    throw new Error(`${at}.method: expected a method name or "*", found ${JSON.stringify(config.method)}`);
  }
  const status = config.status ?? 200;
  if (!Number.isInteger(status) || status < 200 || status > 999)
    throw new Error(`${at}.status: expected an integer 200–999, found ${JSON.stringify(config.status)}`);
  if (config.body !== undefined && config.bodyFile !== undefined) throw new Error(`${at}: expected "body" or "bodyFile", found both`);
  if (config.body !== undefined && typeof config.body !== 'string') throw new Error(`${at}.body: expected a string, found ${JSON.stringify(config.body)}`);
  let reply: LocalReply;
  try {
    reply = localReply(status, { headers: headerFields(config.headers, at), body: config.body ?? readBody(config.bodyFile, file, at) });
  } catch (error) {
    throw new Error(`${at}: ${(error as Error).message}`, { cause: error });
  }
  const method = config.method === undefined || config.method === '*' ? undefined : config.method.toUpperCase();
  return { index, method, matches: picomatch(config.url, options), reply };
}

/** The fields of a `headers` object, in order, one per value of an array. */
function headerFields(headers: RouteConfig['headers'], at: string): [string, string][] {
  if (headers === undefined) return [];
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers))
    throw new Error(`${at}.headers: expected an object, found ${JSON.stringify(headers)}`);
  const fields: [string, string][] = [];
  for (const [name, value] of Object.entries(headers)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (typeof one !== 'string') throw new Error(`${at}.headers.${name}: expected a string or an array of strings, found ${JSON.stringify(value)}`);
      fields.push([name, one]);
    }
  }
  return fields;
}

/** The bytes of `bodyFile` (relative to the routes file), or none. */
function readBody(bodyFile: string | undefined, routesFile: string, at: string): Buffer | undefined {
  if (bodyFile === undefined) return undefined;
  if (typeof bodyFile !== 'string' || bodyFile === '') throw new Error(`${at}.bodyFile: expected a file name, found ${JSON.stringify(bodyFile)}`);
  const file = path.resolve(path.dirname(routesFile), bodyFile);
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(
      `${at}.bodyFile: expected a readable file, found ${file} failing with ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}
