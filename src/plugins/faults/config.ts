// The options of the `faults` plugin: their TypeScript shapes and the JSON Schema that checks
// them at start-up and on the admin routes (one `if`/`then` subschema per type, so an error
// points into the fault that has it).
import type { JsonSchema } from '../../core/plugin.js';

/** Which way a fault acts: `upstream` is client → origin, `downstream` origin → client. */
export type FaultDirection = 'upstream' | 'downstream' | 'both';

/** Which requests a fault may fire for: every criterion listed must match. */
export interface FaultMatch {
  /** picomatch globs against the target host, case-insensitive (`*.example.com`). */
  hosts?: string[];
  /** Request methods (`GET`, `CONNECT`, …). */
  methods?: string[];
  /** picomatch globs against the request path, without the query (`/api/**`). */
  paths?: string[];
  /** Target ports. */
  ports?: number[];
}

/** What every fault has. */
interface FaultBase {
  /** Unique within the list: names the fault in logs, on the exchange and in `DELETE /faults/<name>`. */
  name: string;
  /** Chance of firing for a request (a tunnel: at its CONNECT) that matches, 0 to 1. */
  probability: number;
  /** Which requests it may fire for; absent: all. */
  match?: FaultMatch;
}

/** Answers the request in the origin's place; nothing is dialled, the connection stays open. */
export interface AbortFault extends FaultBase {
  /** Tells the types apart. */
  type: 'abort';
  /** Status of the answer. */
  status: number;
  /** Body of the answer (text/plain); absent: empty. */
  body?: string;
}

/** Holds a request before it goes upstream, or a response before its head goes to the client. */
export interface DelayFault extends FaultBase {
  /** Tells the types apart. */
  type: 'delay';
  /** The delay, in ms. */
  delayMs: number;
  /** Up to this many ms more or less, drawn per request. */
  jitterMs: number;
  /** Which message waits: the request (`upstream`), the response (`downstream`) or both. */
  direction: FaultDirection;
}

/** The response body stops after `afterBytes` and the client connection closes. */
export interface CutResponseFault extends FaultBase {
  /** Tells the types apart. */
  type: 'cut-response';
  /** Body bytes (as framed on the wire) the client gets. */
  afterBytes: number;
}

/** The client connection closes without an answer. */
export interface DropFault extends FaultBase {
  /** Tells the types apart. */
  type: 'drop';
}

/** What every byte-stream fault has. */
interface StreamFaultBase extends FaultBase {
  /** Which direction's bytes it acts on. */
  direction: FaultDirection;
}

/** Delays every chunk. */
export interface LatencyFault extends StreamFaultBase {
  /** Tells the types apart. */
  type: 'latency';
  /** Delay of each chunk, in ms. */
  latencyMs: number;
  /** Up to this many ms more or less, drawn per chunk. */
  jitterMs: number;
}

/** Caps the rate. */
export interface BandwidthFault extends StreamFaultBase {
  /** Tells the types apart. */
  type: 'bandwidth';
  /** Bytes per second. */
  bytesPerSecond: number;
}

/** Cuts chunks into small slices, optionally spaced out. */
export interface SlicerFault extends StreamFaultBase {
  /** Tells the types apart. */
  type: 'slicer';
  /** Average slice size in bytes. */
  averageSize: number;
  /** Slices vary by up to this many bytes either way. */
  sizeVariation: number;
  /** Pause between slices, in ms. */
  delayMs: number;
}

/** Closes the connection once this many bytes went through. */
export interface LimitDataFault extends StreamFaultBase {
  /** Tells the types apart. */
  type: 'limit-data';
  /** Bytes let through before the close. */
  bytes: number;
}

/** Stops all data, and closes the connection after `afterMs` (0: never; something else must). */
export interface TimeoutFault extends StreamFaultBase {
  /** Tells the types apart. */
  type: 'timeout';
  /** Time until the close, in ms; 0 holds until something else closes the connection. */
  afterMs: number;
}

/** Resets the client connection (TCP RST) after `afterMs`. */
export interface ResetFault extends StreamFaultBase {
  /** Tells the types apart. */
  type: 'reset';
  /** Time until the reset, in ms. */
  afterMs: number;
}

/** Delays the FIN (the end of a tunnel direction) by `delayMs`. */
export interface SlowCloseFault extends StreamFaultBase {
  /** Tells the types apart. */
  type: 'slow-close';
  /** Delay of the FIN, in ms. */
  delayMs: number;
}

/** One byte-stream fault as validated (defaults filled in): what `createStreamFault` is given. */
export type StreamFaultConfig = LatencyFault | BandwidthFault | SlicerFault | LimitDataFault | TimeoutFault | ResetFault | SlowCloseFault;

/** One fault of the list, as validated (defaults filled in). */
export type FaultConfig = AbortFault | DelayFault | CutResponseFault | DropFault | StreamFaultConfig;

/** Options of `faults`. */
export interface FaultsOptions {
  /** Seed of every decision; absent: one is chosen at start-up and logged. */
  seed?: number;
  /** The faults, each drawn per request in this order. */
  faults: FaultConfig[];
}

const ms = (description: string) => ({ type: 'integer', minimum: 0, description });
const direction = {
  enum: ['upstream', 'downstream', 'both'],
  default: 'downstream',
  description: 'upstream: client → origin; downstream: origin → client; both.',
};

/** Each type's own attributes (beside name, type, probability and match), and which of them are required. */
const TYPES: Record<FaultConfig['type'], { properties: Record<string, JsonSchema>; required: string[] }> = {
  abort: {
    properties: {
      status: { type: 'integer', minimum: 200, maximum: 599, description: 'Status the proxy answers with.' },
      body: { type: 'string', description: 'Body of the answer (text/plain); absent: empty.' },
    },
    required: ['status'],
  },
  delay: {
    properties: {
      delayMs: ms('Delay in ms: before the request goes upstream, or before the response head goes to the client.'),
      jitterMs: { ...ms('Up to this many ms more or less, drawn per request.'), default: 0 },
      direction,
    },
    required: ['delayMs'],
  },
  'cut-response': {
    properties: { afterBytes: { type: 'integer', minimum: 0, description: 'Response body bytes (as framed) the client gets before the connection closes.' } },
    required: ['afterBytes'],
  },
  drop: { properties: {}, required: [] },
  latency: {
    properties: {
      latencyMs: ms('Delay of every chunk, ms.'),
      jitterMs: { ...ms('Up to this many ms more or less, drawn per chunk.'), default: 0 },
      direction,
    },
    required: ['latencyMs'],
  },
  bandwidth: {
    properties: { bytesPerSecond: { type: 'integer', minimum: 1, description: 'Rate cap, bytes per second.' }, direction },
    required: ['bytesPerSecond'],
  },
  slicer: {
    properties: {
      averageSize: { type: 'integer', minimum: 1, description: 'Average slice size, bytes.' },
      sizeVariation: { type: 'integer', minimum: 0, default: 0, description: 'Slices vary by up to this many bytes either way.' },
      delayMs: { ...ms('Pause between slices, ms.'), default: 0 },
      direction,
    },
    required: ['averageSize'],
  },
  'limit-data': {
    properties: { bytes: { type: 'integer', minimum: 0, description: 'Bytes let through, then the connection closes.' }, direction },
    required: ['bytes'],
  },
  timeout: {
    properties: { afterMs: ms('Data stops; the connection closes after this many ms (0: never, until something else closes it).'), direction },
    required: ['afterMs'],
  },
  reset: {
    properties: { afterMs: { ...ms('The client connection is reset (TCP RST) after this many ms.'), default: 0 }, direction },
    required: [],
  },
  'slow-close': {
    properties: { delayMs: ms('The FIN (a tunnel direction ending) is passed on this many ms late.'), direction },
    required: ['delayMs'],
  },
};

/** Globs, methods, ports: a fault fires only for requests matching every list given. */
const MATCH_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Which requests the fault may fire for; every list given must match (absent: all).',
  properties: {
    hosts: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      description: 'Globs on the target host, case-insensitive (*.example.com); needs http-forward/connect-handler earlier.',
    },
    methods: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$" },
      description: 'Request methods (GET, CONNECT, …).',
    },
    paths: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Globs on the request path without the query (/api/**).' },
    ports: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1, maximum: 65535 }, description: 'Target ports.' },
  },
};

/** The schema of one fault (also of a `POST /faults` body). */
export const FAULT_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['name', 'type'],
  description: 'One fault: name, type, probability, match, and the attributes of its type.',
  properties: {
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9._~-]{1,100}$',
      description: 'Unique name (letters, digits, . _ ~ -): in logs, on the exchange, in DELETE /faults/<name>.',
    },
    type: { enum: Object.keys(TYPES), description: 'What the fault does (see docs/plugins/faults.md).' },
    probability: { type: 'number', minimum: 0, maximum: 1, default: 1, description: 'Chance of firing per matching request (a tunnel: at its CONNECT).' },
    match: MATCH_SCHEMA,
  },
  // One subschema per type: an attribute of another type, or a missing one, is reported at its fault.
  allOf: Object.entries(TYPES).map(([type, { properties, required }]) => ({
    if: { properties: { type: { const: type } } },
    then: {
      properties: { name: true, type: true, probability: true, match: true, ...properties },
      required,
      additionalProperties: false,
    },
  })),
};

/** The options schema of `faults` (also of a `PUT /faults` body). */
export const FAULTS_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    seed: {
      type: 'integer',
      minimum: 0,
      maximum: 4294967295,
      description: 'Seed of every decision: the same seed and the same requests give the same faults. Absent: chosen at start-up and logged.',
    },
    faults: { type: 'array', default: [], items: FAULT_SCHEMA, description: 'The faults, each drawn per request (a tunnel: once, at CONNECT).' },
  },
};
