import { Ajv, type ValidateFunction } from 'ajv';
import type { AdminHandler, AdminRequest, AdminResponse } from '../../core/admin-routes.js';
import { formatAjvError } from '../../core/registry.js';
import { FAULT_SCHEMA, FAULTS_OPTIONS_SCHEMA, type FaultConfig, type FaultsOptions } from './config.js';
import { FaultSet } from './fault-set.js';

/** What the admin routes change: the list in force, swapped whole. */
export interface FaultsControl {
  /** The faults in force and their seed. */
  readonly current: FaultSet;
  /** Puts a new list in force for the requests and tunnels that start from now on. */
  replace(faults: FaultSet): void;
}

/** The prefix the routes are served under. */
const PREFIX = '/faults';

// The same schemas as the plugin's options, with defaults filled in as at start-up.
const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: true });
let validateOptions: ValidateFunction | undefined;
let validateFault: ValidateFunction | undefined;

/**
 * The handler of `/faults` on the admin listener: `GET /faults` (seed and list), `PUT /faults`
 * (a new list, and optionally a new seed: the options' shape), `POST /faults` (one more fault),
 * `GET` and `DELETE /faults/<name>`. Bodies are checked against the options' schema; a bad one is
 * 400 with the JSON path of what is wrong (`$.faults[1].latencyMs: expected …`). A change builds a
 * new list and swaps it in: requests already drawn keep their decisions.
 */
export function faultsRoute(control: FaultsControl): AdminHandler {
  return (request) => handle(control, request);
}

function handle(control: FaultsControl, request: AdminRequest): AdminResponse {
  const rest = request.path.slice(PREFIX.length);
  if (rest === '' || rest === '/') return collection(control, request);
  let name: string;
  try {
    name = decodeURIComponent(rest.slice(1));
  } catch {
    return problem(400, `path: expected /faults/<name>, found ${JSON.stringify(request.path)}`);
  }
  return item(control, request, name);
}

function collection(control: FaultsControl, request: AdminRequest): AdminResponse {
  switch (request.method) {
    case 'GET':
      return state(200, control.current);
    case 'PUT': {
      const body = parse(request.body);
      if ('error' in body) return body.error;
      validateOptions ??= ajv.compile(FAULTS_OPTIONS_SCHEMA);
      if (!validateOptions(body.value)) return problem(400, `$${formatAjvError(validateOptions.errors![0]!, body.value)}`);
      const options = body.value as FaultsOptions;
      return swap(control, options.seed ?? control.current.seed, options.faults, 200, (message) => `$.${message}`);
    }
    case 'POST': {
      const body = parse(request.body);
      if ('error' in body) return body.error;
      validateFault ??= ajv.compile(FAULT_SCHEMA);
      if (!validateFault(body.value)) return problem(400, `$${formatAjvError(validateFault.errors![0]!, body.value)}`);
      const fault = body.value as FaultConfig;
      const { faults, seed } = control.current;
      if (control.current.has(fault.name)) return problem(409, `$.name: expected a name not in use, found ${JSON.stringify(fault.name)}`);
      const at = `faults[${faults.length}]`;
      return swap(control, seed, [...faults, fault], 201, (message) => (message.startsWith(at) ? `$${message.slice(at.length)}` : `$.${message}`));
    }
    default:
      return { status: 405, json: { error: `${request.method} /faults: expected GET, PUT or POST` }, headers: { Allow: 'GET, PUT, POST' } };
  }
}

function item(control: FaultsControl, request: AdminRequest, name: string): AdminResponse {
  const { faults, seed } = control.current;
  const fault = faults.find((candidate) => candidate.name === name);
  switch (request.method) {
    case 'GET':
      return fault ? { status: 200, json: fault } : notFound(name);
    case 'DELETE':
      if (!fault) return notFound(name);
      return swap(
        control,
        seed,
        faults.filter((candidate) => candidate !== fault),
        200,
        (message) => message,
      );
    default:
      return { status: 405, json: { error: `${request.method} /faults/<name>: expected GET or DELETE` }, headers: { Allow: 'GET, DELETE' } };
  }
}

/** Builds the new list (a bad glob is 400 at its path) and puts it in force. */
function swap(control: FaultsControl, seed: number, faults: readonly FaultConfig[], status: number, at: (message: string) => string): AdminResponse {
  let next: FaultSet;
  try {
    next = new FaultSet(seed, faults);
  } catch (error) {
    return problem(400, at((error as Error).message));
  }
  control.replace(next);
  return state(status, next);
}

function parse(text: string): { value: unknown } | { error: AdminResponse } {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (error) {
    return { error: problem(400, `$: expected a JSON body, found ${text === '' ? 'none' : `invalid JSON (${(error as Error).message})`}`) };
  }
}

function state(status: number, set: FaultSet): AdminResponse {
  return { status, json: { seed: set.seed, faults: set.faults } };
}

function notFound(name: string): AdminResponse {
  return problem(404, `no fault named ${JSON.stringify(name)}`);
}

function problem(status: number, error: string): AdminResponse {
  return { status, json: { error } };
}
