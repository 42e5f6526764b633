// Checks of a HAR document for the tests: the HAR 1.2 required fields and types by hand (from the
// spec), and the JSON schema of the har-schema package when it is installed.
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** What is wrong with `value` against a list of required fields and their types (`string`, `number`, `integer`, `array`, `object`). */
function fields(where: string, value: unknown, spec: Record<string, string>, problems: string[]): Json {
  if (!isObject(value)) {
    problems.push(`${where}: expected an object`);
    return {};
  }
  for (const [name, type] of Object.entries(spec)) {
    const optional = type.endsWith('?');
    const kind = optional ? type.slice(0, -1) : type;
    const field = value[name];
    if (field === undefined) {
      if (!optional) problems.push(`${where}.${name}: missing`);
      continue;
    }
    const ok =
      kind === 'array' ? Array.isArray(field) : kind === 'object' ? isObject(field) : kind === 'integer' ? Number.isInteger(field) : typeof field === kind;
    if (!ok) problems.push(`${where}.${name}: expected ${kind}, found ${JSON.stringify(field)}`);
  }
  return value;
}

/** Name/value pairs (headers, query parameters). */
function pairs(where: string, value: unknown, problems: string[]): void {
  if (!Array.isArray(value)) return;
  value.forEach((pair, i) => fields(`${where}[${i}]`, pair, { name: 'string', value: 'string' }, problems));
}

/**
 * The HAR 1.2 spec's required fields and types, checked by hand: log, creator, entries, request,
 * response, content, cache, timings (send, wait and receive ≥ 0, the others ≥ -1), and `time`
 * equal to the sum of the timings that apply. Returns the problems found (none: valid).
 */
export function harProblems(har: unknown): string[] {
  const problems: string[] = [];
  const root = fields('har', har, { log: 'object' }, problems);
  const log = fields('log', root.log, { version: 'string', creator: 'object', entries: 'array', comment: 'string?' }, problems);
  if (log.version !== '1.2') problems.push(`log.version: expected "1.2", found ${JSON.stringify(log.version)}`);
  fields('log.creator', log.creator, { name: 'string', version: 'string' }, problems);
  const entries = Array.isArray(log.entries) ? (log.entries as unknown[]) : [];
  entries.forEach((value, i) => {
    const at = `entries[${i}]`;
    const entry = fields(
      at,
      value,
      {
        startedDateTime: 'string',
        time: 'number',
        request: 'object',
        response: 'object',
        cache: 'object',
        timings: 'object',
        connection: 'string?',
        serverIPAddress: 'string?',
      },
      problems,
    );
    if (typeof entry.startedDateTime === 'string' && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(entry.startedDateTime))
      problems.push(`${at}.startedDateTime: not ISO 8601`);
    for (const name of Object.keys(entry))
      if (!/^(_|pageref$|startedDateTime$|time$|request$|response$|cache$|timings$|serverIPAddress$|connection$|comment$)/.test(name))
        problems.push(`${at}.${name}: not a HAR field and not custom (_)`);
    const request = fields(
      `${at}.request`,
      entry.request,
      {
        method: 'string',
        url: 'string',
        httpVersion: 'string',
        cookies: 'array',
        headers: 'array',
        queryString: 'array',
        postData: 'object?',
        headersSize: 'integer',
        bodySize: 'integer',
      },
      problems,
    );
    if (typeof request.url === 'string' && !URL.canParse(request.url)) problems.push(`${at}.request.url: not an absolute URL`);
    pairs(`${at}.request.headers`, request.headers, problems);
    pairs(`${at}.request.queryString`, request.queryString, problems);
    if (request.postData !== undefined) fields(`${at}.request.postData`, request.postData, { mimeType: 'string', text: 'string' }, problems);
    const response = fields(
      `${at}.response`,
      entry.response,
      {
        status: 'integer',
        statusText: 'string',
        httpVersion: 'string',
        cookies: 'array',
        headers: 'array',
        content: 'object',
        redirectURL: 'string',
        headersSize: 'integer',
        bodySize: 'integer',
      },
      problems,
    );
    pairs(`${at}.response.headers`, response.headers, problems);
    fields(
      `${at}.response.content`,
      response.content,
      { size: 'integer', mimeType: 'string', compression: 'integer?', text: 'string?', encoding: 'string?' },
      problems,
    );
    const timings = fields(
      `${at}.timings`,
      entry.timings,
      { send: 'number', wait: 'number', receive: 'number', blocked: 'number?', dns: 'number?', connect: 'number?', ssl: 'number?' },
      problems,
    );
    let sum = 0;
    for (const [name, value] of Object.entries(timings)) {
      if (typeof value !== 'number') continue;
      const least = ['send', 'wait', 'receive'].includes(name) ? 0 : -1;
      if (value < least) problems.push(`${at}.timings.${name}: below ${least}`);
      // ssl is part of connect: it is not added twice.
      if (value > 0 && name !== 'ssl') sum += value;
    }
    if (typeof entry.time === 'number' && Math.abs(entry.time - sum) > 0.05) problems.push(`${at}.time: ${entry.time} is not the sum of its timings (${sum})`);
  });
  return problems;
}

/**
 * A validator for the har-schema package's HAR 1.2 JSON schema (draft-06), or undefined when that
 * package is not installed. Its schemas use keywords ajv's strict mode refuses (`optional`, `min`),
 * so strict mode is off; formats are not checked (the hand check covers dates and URLs).
 */
export function harSchemaValidator(): ((har: unknown) => string[]) | undefined {
  const require = createRequire(import.meta.url);
  let schemas: Record<string, Json>;
  try {
    schemas = require('har-schema') as Record<string, Json>;
  } catch {
    return undefined;
  }
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json') as Json);
  for (const schema of Object.values(schemas)) ajv.addSchema(schema);
  const validate = ajv.getSchema('har.json')!;
  return (har) => (validate(har) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ''}`));
}
