// Reading a capture file (JSON lines written by the `capture` plugin) into checked records.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { Ajv, type ErrorObject } from 'ajv';
import type { CaptureRecord } from '../plugins/capture-record.js';
import { CommandError } from './command.js';

const nullable = (schema: object) => ({ anyOf: [{ type: 'null' }, schema] });
const headers = { type: 'array', items: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'string' } } };
const body = { type: 'object', required: ['base64', 'truncated'], properties: { base64: { type: 'string' }, truncated: { type: 'boolean' } } };
const ms = { type: 'number', minimum: 0 };

/**
 * The fields the readers rely on, checked once per line so that the commands can trust them. Other
 * fields are allowed: a later writer of version 1 may add some.
 */
const RECORD_SCHEMA = {
  type: 'object',
  required: ['v', 'kind', 'connection', 'exchange', 'client', 'startedAt', 'request', 'response', 'upstream', 'reused', 'timings', 'bytes', 'faults'],
  properties: {
    v: { const: 1 },
    kind: { enum: ['http', 'tunnel', 'failure'] },
    connection: { type: 'integer', minimum: 1 },
    exchange: { type: 'integer', minimum: 0 },
    client: { type: 'object', required: ['address', 'port'], properties: { address: { type: 'string' }, port: { type: 'integer' } } },
    startedAt: { type: 'string', pattern: '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?(Z|[+-]\\d\\d:\\d\\d)$' },
    request: nullable({
      type: 'object',
      required: ['method', 'target', 'version', 'headers'],
      properties: { method: { type: 'string', minLength: 1 }, target: { type: 'string' }, version: { type: 'string' }, headers },
    }),
    response: nullable({
      type: 'object',
      required: ['version', 'status', 'reason', 'headers'],
      properties: { version: { type: 'string' }, status: { type: 'integer', minimum: 100, maximum: 999 }, reason: { type: 'string' }, headers },
    }),
    upstream: nullable({ type: 'object', required: ['host', 'port'], properties: { host: { type: 'string' }, port: { type: 'integer' } } }),
    reused: { type: 'boolean' },
    timings: {
      type: 'object',
      required: ['connectMs', 'firstByteMs', 'endMs'],
      properties: { connectMs: nullable(ms), firstByteMs: nullable(ms), endMs: ms },
    },
    bytes: { type: 'object', required: ['in', 'out'], properties: { in: { type: 'integer', minimum: 0 }, out: { type: 'integer', minimum: 0 } } },
    requestBody: body,
    responseBody: body,
    faults: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'type', 'direction', 'params'],
        properties: {
          name: { type: 'string' },
          type: { type: 'string' },
          direction: { enum: ['upstream', 'downstream', 'both'] },
          params: { type: 'object', additionalProperties: { type: 'number' } },
        },
      },
    },
    answeredBy: { type: 'string' },
    error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
};

const validate = new Ajv({ allErrors: false, strict: true }).compile<CaptureRecord>(RECORD_SCHEMA);

/** What went wrong with a line, in the words of the file's fields: `timings.endMs: must be number`. */
function describe(error: ErrorObject): string {
  const field = error.instancePath.slice(1).replaceAll('/', '.') || 'record';
  if (error.keyword === 'const' && error.instancePath === '/v') return 'v: capture format version not supported (this proxyline reads version 1)';
  if (error.keyword === 'required') return `${field}: missing ${(error.params as { missingProperty: string }).missingProperty}`;
  return `${field}: ${error.message ?? 'invalid'}`;
}

/** Parses one line of a capture file; throws CommandError naming `where` (file:line) when it is not a version-1 record. */
export function parseCaptureLine(text: string, where: string): CaptureRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CommandError(`${where}: not JSON (${(error as Error).message})`);
  }
  if (!validate(value)) throw new CommandError(`${where}: ${describe(validate.errors![0]!)}`);
  return value;
}

/** A capture file's records, in file order, and what was skipped. */
export interface CaptureFile {
  /** Every record, in the order they were written (exchanges end in any order). */
  readonly records: CaptureRecord[];
  /** Why the last line was left out, when it was cut short (the writer stopped mid-line). */
  readonly warning?: string;
}

/**
 * Reads a capture file (`-` for stdin) line by line. Blank lines are skipped; a last line that is
 * not JSON and has no newline after it was cut short by a writer that stopped, and is left out with
 * a warning; any other bad line fails the whole read with its line number.
 */
export async function readCaptureFile(file: string): Promise<CaptureFile> {
  const name = file === '-' ? 'stdin' : file;
  const input: Readable = file === '-' ? process.stdin : createReadStream(file);
  const failed = new Promise<never>((_resolve, reject) => {
    input.once('error', (error: Error) => reject(new CommandError(`cannot read ${name}: ${error.message}`)));
  });
  // Unhandled otherwise when the read succeeds: the race below is its only listener.
  failed.catch(() => undefined);
  const records: CaptureRecord[] = [];
  let pending: { text: string; line: number } | undefined;
  let endsWithNewline = true;
  input.on('data', (chunk: Buffer | string) => {
    if (chunk.length > 0) endsWithNewline = chunk[chunk.length - 1] === (typeof chunk === 'string' ? '\n' : 0x0a);
  });
  const lines = createInterface({ input, crlfDelay: Infinity });
  const read = (async () => {
    let line = 0;
    for await (const text of lines) {
      line++;
      if (pending) records.push(parseCaptureLine(pending.text, `${name}:${pending.line}`));
      pending = text.trim() === '' ? undefined : { text, line };
    }
  })();
  try {
    await Promise.race([read, failed]);
  } finally {
    lines.close();
    if (input !== process.stdin) input.destroy();
  }
  if (!pending) return { records };
  try {
    records.push(parseCaptureLine(pending.text, `${name}:${pending.line}`));
  } catch (error) {
    if (endsWithNewline || !(error instanceof CommandError) || !error.message.includes('not JSON')) throw error;
    return { records, warning: `${name}:${pending.line}: left out, cut short (no newline at its end)` };
  }
  return { records };
}
