// Properties of the HTTP parsers (RequestParser, ResponseParser, and the BodyScanner on chunked
// bodies), each run by fast-check for a given number of inputs: by the ava test with few runs and
// a fixed seed, and by `npm run fuzz` with many.
//
//  1. no-crash: on random and mutated input a parser throws nothing but a ProxyError of its
//     code(s), breaks no API invariant, and emits no more events than the bytes can justify.
//  2. split-invariant: the same bytes split at other chunk boundaries (random, and byte by byte)
//     give the same heads, body bytes and message ends, or the same error code.
//  3. refuses-bad: a message with one refused construct gets no head event (head-time
//     constructs) or no data past the bad byte and no message end (body-time ones); what came
//     before it is reported in full. See bad.ts for which construct is refused when.
//  4. round-trip: valid messages give back their heads and body bytes exactly.
import fc from 'fast-check';
import { badRequest as badRequestError, type ProxyErrorCode } from '../../src/core/errors.js';
import { badResponse as badResponseError } from '../../src/core/http/response-framing.js';
import { chunkedBody, requestStream, response, type GenRequest, type RequestStream, type ResponseOptions } from './arbitraries.js';
import { badChunkedBody, badRequest, badResponse, type BadCase } from './bad.js';
import { bytes, difference, InvariantError, markers, parseRequests, parseResponse, scanChunked, type Outcome, type Token } from './harness.js';
import { bytewise, cuts, mutate, mutations, soup, split } from './mutate.js';

/** How often each outcome was seen (of the first parse of each input). */
export interface Stats {
  inputs: number;
  accepted: number;
  refused: Map<string, number>;
}

export const newStats = (): Stats => ({ inputs: 0, accepted: 0, refused: new Map() });

/** How to run a property. */
export interface RunOptions {
  numRuns: number;
  /** fast-check seed (random when absent); printed by fast-check on failure. */
  seed?: number;
  /** Replays one run of a failure report (fast-check's `path`). */
  path?: string;
  stats?: Stats;
  /** Called with each input before it is parsed (the fuzz runner keeps it to report a hang). */
  onInput?: (input: Buffer) => void;
}

/** A named property of one parser. */
export interface ParserProperty {
  name: string;
  /** Throws fast-check's report (counterexample, seed, path) on failure. */
  run(options: RunOptions): void;
}

const record = (stats: Stats | undefined, outcome: Outcome) => {
  if (!stats) return;
  stats.inputs++;
  if (!outcome.error) stats.accepted++;
  else stats.refused.set(outcome.error.code, (stats.refused.get(outcome.error.code) ?? 0) + 1);
};

/** Fails the property with a message (fast-check adds the counterexample and seed). */
function check(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new InvariantError(message());
}

function expectCode(outcome: Outcome, codes: readonly ProxyErrorCode[]): void {
  check(!outcome.error || codes.includes(outcome.error.code), () => `unexpected error code ${outcome.error!.code}: ${outcome.error!.message}`);
}

const show = (tokens: readonly Token[]) => JSON.stringify(tokens);

/** Defines a property over `arbitrary`; `predicate` gets each value and the run's options. */
function property<T>(name: string, arbitrary: fc.Arbitrary<T>, predicate: (value: T, options: RunOptions) => void): ParserProperty {
  return {
    name,
    run(options) {
      fc.assert(
        fc.property(arbitrary, (value) => predicate(value, options)),
        { numRuns: options.numRuns, seed: options.seed, path: options.path, includeErrorInReport: true },
      );
    },
  };
}

// --- inputs -------------------------------------------------------------------------------------

const headLimit = fc.constantFrom(32, 64, 128, 256, 1024, 65536);
const streamText = (s: RequestStream) => s.requests.map((r) => r.text).join('') + s.tail;

const requestInput = fc.record({
  text: fc
    .tuple(
      fc.oneof(
        requestStream.map(streamText),
        badRequest.map((c) => c.text),
        soup,
      ),
      mutations,
    )
    .map(([text, m]) => mutate(text, m)),
  maxHeaderBytes: headLimit,
  cuts,
  decisions: fc.array(fc.boolean(), { maxLength: 3 }),
  late: fc.boolean(),
});

const randomOptions = fc.record({
  maxHeaderBytes: headLimit,
  requestMethod: fc.constantFrom('GET', 'HEAD', 'CONNECT', 'POST'),
  upgradeRequested: fc.boolean(),
  dechunk: fc.boolean(),
});

const responseInput = fc.record({
  base: fc.oneof(
    response.map((r) => ({ text: r.text, options: r.options })),
    badResponse.map((c) => ({ text: c.text, options: c.options })),
    fc.record({ text: soup, options: randomOptions }),
  ),
  mutations,
  random: fc.option(randomOptions, { freq: 3 }),
  eof: fc.boolean(),
  cuts,
});

const chunkedInput = fc.record({
  text: fc
    .tuple(
      fc.oneof(
        chunkedBody.map((b) => b.wire),
        badChunkedBody.map((b) => b.wire),
        soup,
      ),
      fc.oneof(fc.constant(''), soup),
      mutations,
    )
    .map(([wire, after, m]) => mutate(wire + after, m)),
  maxTrailerBytes: fc.constantFrom(8, 64, 1024),
  response: fc.boolean(),
  offsets: fc.boolean(),
  cuts,
});

const failOf = (response: boolean) => (response ? badResponseError : badRequestError);
const REQUEST_CODES: ProxyErrorCode[] = ['ERR_PROXY_BAD_REQUEST', 'ERR_PROXY_HEADERS_TOO_LARGE'];
const RESPONSE_CODES: ProxyErrorCode[] = ['ERR_PROXY_BAD_RESPONSE'];

// --- expected events of valid messages ----------------------------------------------------------

const head = (value: unknown): Token => ({ kind: 'head', json: JSON.stringify(value) });
const END: Token = { kind: 'end' };
const data = (text: string): Token[] => (text === '' ? [] : [{ kind: 'data', bytes: text }]);

/** The events a client's requests must give, with the upgrade and CONNECT decisions applied. */
export function expectRequests(requests: readonly GenRequest[], tail: string, decisions: readonly boolean[]): Token[] {
  const tokens: Token[] = [];
  const all = requests.map((r) => r.text).join('') + tail;
  let position = 0;
  for (const [index, r] of requests.entries()) {
    position += r.text.length;
    tokens.push(head(r.head));
    tokens.push(...data(r.body), END);
    // A CONNECT, like an upgrade request, waits for its decision: established, everything after it
    // is tunnel data; refused, the next request follows.
    const upgraded = (r.connect || r.upgrade) && decisions.length > 0 && decisions[index % decisions.length]!;
    if (upgraded) return [...tokens, ...data(all.slice(position))];
    if (r.closeClient) return tokens;
  }
  return tokens;
}

// --- request parser -----------------------------------------------------------------------------

const requestNoCrash = property('request: no crash', requestInput, (c, o) => {
  const input = bytes(c.text);
  o.onInput?.(input);
  const outcome = parseRequests(input, split(input, c.cuts), c.maxHeaderBytes, { decisions: c.decisions, late: c.late });
  record(o.stats, outcome);
  expectCode(outcome, REQUEST_CODES);
});

const requestSplit = property('request: split-invariant', requestInput, (c, o) => {
  const input = bytes(c.text);
  o.onInput?.(input);
  const upgrades = { decisions: c.decisions, late: c.late };
  const whole = parseRequests(input, [input], c.maxHeaderBytes, upgrades);
  record(o.stats, whole);
  expectCode(whole, REQUEST_CODES);
  for (const [how, pieces] of [
    ['random split', split(input, c.cuts)],
    ['byte by byte', bytewise(input)],
  ] as const) {
    const other = parseRequests(input, pieces, c.maxHeaderBytes, upgrades);
    const why = difference(whole, other, false);
    check(why === undefined, () => `${how} differs from one chunk: ${why}\n  whole: ${show(whole.tokens)}\n  ${how}: ${show(other.tokens)}`);
  }
});

/** Checks a refusal: the code, everything before the bad message, and nothing of it past the bad point. */
function checkRefusal(c: BadCase, outcome: Outcome, before: readonly Token[], dechunked: boolean): void {
  check(outcome.error !== undefined, () => `${c.construct}: accepted, events ${show(outcome.tokens)}`);
  check(outcome.error.code === c.code, () => `${c.construct}: ${outcome.error!.code} (${outcome.error!.message}), expected ${c.code}`);
  const heads = markers(outcome.tokens).filter((t) => t.kind === 'head').length;
  const ends = markers(outcome.tokens).filter((t) => t.kind === 'end').length;
  const expectedHeads = c.before + (c.when === 'body' ? 1 : 0);
  check(heads === expectedHeads, () => `${c.construct}: ${heads} heads emitted, expected ${expectedHeads} (${outcome.error!.message})`);
  check(ends === c.ends, () => `${c.construct}: ${ends} message ends, expected ${c.ends}`);
  if (before.length > 0)
    check(show(outcome.tokens.slice(0, before.length)) === show(before), () => `${c.construct}: the valid messages before it were not reported as sent`);
  if (c.when !== 'body') return;
  const last = outcome.tokens[outcome.tokens.length - 1]!;
  const emitted = last.kind === 'data' ? last.bytes : '';
  if (dechunked) {
    check(emitted === c.payload, () => `${c.construct}: payload ${JSON.stringify(emitted)} emitted, expected ${JSON.stringify(c.payload)}`);
  } else {
    check(c.wire.startsWith(emitted), () => `${c.construct}: emitted body is not a prefix of the body sent`);
    check(emitted.length <= c.errorAt, () => `${c.construct}: ${emitted.length} body bytes emitted, past the bad byte at ${c.errorAt}`);
  }
}

const requestRefuses = property('request: refuses-bad', fc.tuple(badRequest, cuts), ([c, at], o) => {
  const input = bytes(c.text);
  o.onInput?.(input);
  const outcome = parseRequests(input, split(input, at), c.maxHeaderBytes, { decisions: [], late: false });
  record(o.stats, outcome);
  // The requests before the bad one are plain ones: their events are known in full.
  checkRefusal(c, outcome, expectRequests(c.prior, '', []), false);
});

const requestRoundTrip = property('request: round-trip', fc.record({ stream: requestStream, cuts, late: fc.boolean(), exact: fc.boolean() }), (c, o) => {
  const { requests, tail, decisions } = c.stream;
  const input = bytes(streamText(c.stream));
  o.onInput?.(input);
  // The exact limit: the largest head (or trailer section, or unfinished head) just fits.
  const exact = Math.max(1, tail.length, ...requests.map((r) => Math.max(r.headBytes, r.trailerBytes)));
  const outcome = parseRequests(input, split(input, c.cuts), c.exact ? exact : 65536, { decisions, late: c.late });
  record(o.stats, outcome);
  check(!outcome.error, () => `refused: ${outcome.error!.code} ${outcome.error!.message}`);
  const expected = expectRequests(requests, tail, decisions);
  check(show(outcome.tokens) === show(expected), () => `events differ\n  got:      ${show(outcome.tokens)}\n  expected: ${show(expected)}`);
});

// --- response parser ----------------------------------------------------------------------------

type ResponseInput = {
  base: { text: string; options: ResponseOptions };
  mutations: Parameters<typeof mutate>[1];
  random: ResponseOptions | null;
  eof: boolean;
  cuts: number[];
};
const responseCase = (c: ResponseInput) => ({ text: mutate(c.base.text, c.mutations), options: c.random ?? c.base.options });

const responseNoCrash = property('response: no crash', responseInput, (c, o) => {
  const { text, options } = responseCase(c);
  const input = bytes(text);
  o.onInput?.(input);
  const outcome = parseResponse(input, split(input, c.cuts), options, c.eof);
  record(o.stats, outcome);
  expectCode(outcome, RESPONSE_CODES);
});

const responseSplit = property('response: split-invariant', responseInput, (c, o) => {
  const { text, options } = responseCase(c);
  const input = bytes(text);
  o.onInput?.(input);
  const whole = parseResponse(input, [input], options, c.eof);
  record(o.stats, whole);
  expectCode(whole, RESPONSE_CODES);
  for (const [how, pieces] of [
    ['random split', split(input, c.cuts)],
    ['byte by byte', bytewise(input)],
  ] as const) {
    const other = parseResponse(input, pieces, options, c.eof);
    const why = difference(whole, other, options.dechunk);
    check(why === undefined, () => `${how} differs from one chunk: ${why}\n  whole: ${show(whole.tokens)}\n  ${how}: ${show(other.tokens)}`);
  }
});

const responseRefuses = property('response: refuses-bad', fc.tuple(badResponse, cuts, fc.boolean()), ([c, at, eof], o) => {
  const input = bytes(c.text);
  o.onInput?.(input);
  const outcome = parseResponse(input, split(input, at), c.options, eof);
  record(o.stats, outcome);
  checkRefusal(c, outcome, [], c.options.dechunk);
});

const responseRoundTrip = property('response: round-trip', fc.tuple(response, cuts), ([r, at], o) => {
  const input = bytes(r.text);
  o.onInput?.(input);
  const outcome = parseResponse(input, split(input, at), r.options, r.eof);
  record(o.stats, outcome);
  check(!outcome.error, () => `refused: ${outcome.error!.code} ${outcome.error!.message}`);
  const expected: Token[] = [];
  for (const h of r.heads) expected.push(head(h));
  const final = r.heads[r.heads.length - 1]!;
  if (final.framing === 'tunnel') expected.push(END, ...data(r.body));
  else expected.push(...data(r.body), ...(r.ends ? [END] : []));
  check(show(outcome.tokens) === show(expected), () => `events differ\n  got:      ${show(outcome.tokens)}\n  expected: ${show(expected)}`);
  check(outcome.consumed === r.consumed, () => `consumed ${outcome.consumed} bytes, expected ${r.consumed}`);
});

// --- chunked bodies (BodyScanner, ChunkedScanner) -------------------------------------------------

const chunkedNoCrash = property('chunked: no crash', chunkedInput, (c, o) => {
  const input = bytes(c.text);
  o.onInput?.(input);
  const outcome = scanChunked(input, split(input, c.cuts), c.maxTrailerBytes, failOf(c.response), c.offsets);
  record(o.stats, outcome);
  // Every error, trailer field errors included, is built by the scanner's own factory.
  expectCode(outcome, [c.response ? 'ERR_PROXY_BAD_RESPONSE' : 'ERR_PROXY_BAD_REQUEST']);
});

const chunkedSplit = property('chunked: split-invariant', chunkedInput, (c, o) => {
  const input = bytes(c.text);
  o.onInput?.(input);
  const fail = failOf(c.response);
  const whole = scanChunked(input, [input], c.maxTrailerBytes, fail, false);
  record(o.stats, whole);
  for (const [how, pieces] of [
    ['random split', split(input, c.cuts)],
    ['byte by byte', bytewise(input)],
  ] as const) {
    const other = scanChunked(input, pieces, c.maxTrailerBytes, fail, c.offsets);
    const why =
      difference(whole, other, true) ??
      (whole.error && whole.error.message !== other.error!.message ? `message ${whole.error.message} vs ${other.error!.message}` : undefined);
    check(why === undefined, () => `${how} differs from one chunk: ${why}\n  whole: ${show(whole.tokens)}\n  ${how}: ${show(other.tokens)}`);
  }
});

const chunkedRefuses = property('chunked: refuses-bad', fc.tuple(badChunkedBody, cuts, fc.boolean(), fc.boolean()), ([b, at, response, offsets], o) => {
  const input = bytes(b.wire);
  o.onInput?.(input);
  const outcome = scanChunked(input, split(input, at), 65536, failOf(response), offsets);
  record(o.stats, outcome);
  const code = response ? 'ERR_PROXY_BAD_RESPONSE' : 'ERR_PROXY_BAD_REQUEST';
  check(
    outcome.error?.code === code,
    () => `${b.construct}: ${outcome.error ? `${outcome.error.code} ${outcome.error.message}` : 'accepted'}, expected ${code}`,
  );
  const payload = outcome.tokens.map((t) => (t.kind === 'data' ? t.bytes : '')).join('');
  check(payload === b.payload, () => `${b.construct}: payload ${JSON.stringify(payload)} emitted, expected ${JSON.stringify(b.payload)}`);
});

const chunkedRoundTrip = property('chunked: round-trip', fc.tuple(chunkedBody, soup, cuts, fc.boolean(), fc.boolean()), ([b, after, at, exact, offsets], o) => {
  const input = bytes(b.wire + after);
  o.onInput?.(input);
  const outcome = scanChunked(input, split(input, at), exact ? b.trailerBytes : 1024, badRequestError, offsets);
  record(o.stats, outcome);
  check(!outcome.error, () => `refused: ${outcome.error!.message}`);
  check(outcome.done === true, () => 'not done after the last chunk');
  const payload = outcome.tokens.map((t) => (t.kind === 'data' ? t.bytes : '')).join('');
  check(payload === b.payload, () => `payload ${JSON.stringify(payload)}, expected ${JSON.stringify(b.payload)}`);
  check(outcome.consumed === b.wire.length, () => `consumed ${outcome.consumed}, expected ${b.wire.length}`);
});

/** Every property, in the order the runner reports them. */
export const PROPERTIES: readonly ParserProperty[] = [
  requestNoCrash,
  requestSplit,
  requestRefuses,
  requestRoundTrip,
  responseNoCrash,
  responseSplit,
  responseRefuses,
  responseRoundTrip,
  chunkedNoCrash,
  chunkedSplit,
  chunkedRefuses,
  chunkedRoundTrip,
];
