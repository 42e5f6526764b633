// The client under study: undici's fetch through a ProxyAgent, with a small retry loop, one request at a
// time (so the proxy sees the same connections and requests in the same order on every run).
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { fetch, ProxyAgent } from 'undici';

/** What one attempt ended with: `ok`, `http-<status>` (a 5xx is retried), `body-cut` (the body broke off), `network` (no response). */
export type Outcome = string;

/** How to run the client. */
export interface ClientOptions {
  /** The proxy, e.g. `http://127.0.0.1:8080`. */
  proxyUrl: string;
  /** The origin's base URL, e.g. `http://127.0.0.1:9000`; the client asks for `/items/1`, `/items/2`, …. */
  originUrl: string;
  /** Requests to make (each with up to `attempts` attempts). */
  requests: number;
  /** Attempts per request, the first included (default 3). */
  attempts?: number;
  /** Wait before the first retry, doubled for each next one (default 25 ms). */
  backoffMs?: number;
}

/** What the client saw; every count adds up (see `checkSummary`). */
export interface ClientSummary {
  /** Requests made. */
  requests: number;
  /** Requests that got a 2xx with a whole JSON body. */
  succeeded: number;
  /** Requests that failed on their last attempt. */
  failed: number;
  /** `succeededAfter[n]`: requests that succeeded after `n` retries. */
  succeededAfter: number[];
  /** Attempts in all: `requests` + `retries`. */
  attempts: number;
  /** Attempts after the first, summed over requests. */
  retries: number;
  /** Every attempt by its outcome. */
  outcomes: Record<Outcome, number>;
  /** Failed requests by the outcome of their last attempt. */
  failuresByKind: Record<Outcome, number>;
}

/** One attempt: its outcome, and whether it is worth retrying (a 5xx, a cut body, a network error). */
async function attempt(url: string, dispatcher: ProxyAgent): Promise<{ outcome: Outcome; retry: boolean }> {
  let response;
  try {
    response = await fetch(url, { dispatcher });
  } catch {
    return { outcome: 'network', retry: true };
  }
  let text;
  try {
    text = await response.text();
  } catch {
    return { outcome: 'body-cut', retry: true };
  }
  if (response.status >= 500) return { outcome: `http-${response.status}`, retry: true };
  if (response.status < 200 || response.status > 299) return { outcome: `http-${response.status}`, retry: false };
  try {
    JSON.parse(text);
  } catch {
    return { outcome: 'bad-json', retry: true };
  }
  return { outcome: 'ok', retry: false };
}

/** Runs `requests` requests in turn, each retried on a 5xx or a network error with exponential backoff. */
export async function runClient(options: ClientOptions): Promise<ClientSummary> {
  const attempts = options.attempts ?? 3;
  const backoffMs = options.backoffMs ?? 25;
  // proxyTunnel false: plain http:// goes to the proxy in absolute-form, one exchange per request, so
  // each request draws its own faults (a CONNECT tunnel would draw once for all of them).
  const dispatcher = new ProxyAgent({ uri: options.proxyUrl, proxyTunnel: false });
  const summary: ClientSummary = {
    requests: options.requests,
    succeeded: 0,
    failed: 0,
    succeededAfter: Array.from({ length: attempts }, () => 0),
    attempts: 0,
    retries: 0,
    outcomes: {},
    failuresByKind: {},
  };
  try {
    for (let index = 1; index <= options.requests; index++) {
      const url = `${options.originUrl}/items/${index}`;
      for (let tried = 0; tried < attempts; tried++) {
        if (tried > 0) {
          summary.retries++;
          await sleep(backoffMs * 2 ** (tried - 1));
        }
        summary.attempts++;
        const { outcome, retry } = await attempt(url, dispatcher);
        summary.outcomes[outcome] = (summary.outcomes[outcome] ?? 0) + 1;
        if (outcome === 'ok') {
          summary.succeeded++;
          summary.succeededAfter[tried] = (summary.succeededAfter[tried] ?? 0) + 1;
          break;
        }
        if (!retry || tried === attempts - 1) {
          summary.failed++;
          summary.failuresByKind[outcome] = (summary.failuresByKind[outcome] ?? 0) + 1;
          break;
        }
      }
    }
  } finally {
    await dispatcher.close();
  }
  return summary;
}

/** The sum of a count table. */
function total(counts: Record<string, number> | number[]): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

/** The ways a summary's counts fail to add up (none for a sound one). */
export function checkSummary(summary: ClientSummary): string[] {
  const problems: string[] = [];
  if (summary.succeeded + summary.failed !== summary.requests) problems.push('succeeded + failed != requests');
  if (total(summary.succeededAfter) !== summary.succeeded) problems.push('succeededAfter does not sum to succeeded');
  if (total(summary.failuresByKind) !== summary.failed) problems.push('failuresByKind does not sum to failed');
  if (summary.requests + summary.retries !== summary.attempts) problems.push('requests + retries != attempts');
  if (total(summary.outcomes) !== summary.attempts) problems.push('outcomes do not sum to attempts');
  if ((summary.outcomes.ok ?? 0) !== summary.succeeded) problems.push('ok outcomes != succeeded');
  return problems;
}

/** `a 3, b 1`, or `none`. */
function counts(table: Record<string, number>): string {
  const entries = Object.entries(table).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? 'none' : entries.map(([name, count]) => `${name} ${count}`).join(', ');
}

/** The summary as the few lines the run prints. */
export function formatSummary(summary: ClientSummary): string {
  const after = summary.succeededAfter.map((count, retries) => `${count} after ${retries} ${retries === 1 ? 'retry' : 'retries'}`).join(', ');
  return [
    `requests:  ${summary.requests}: ${summary.succeeded} succeeded (${after}), ${summary.failed} failed`,
    `attempts:  ${summary.attempts} (${summary.retries} retries)`,
    `outcomes:  ${counts(summary.outcomes)}`,
    `failures:  ${counts(summary.failuresByKind)}`,
  ].join('\n');
}

// Run on its own: node dist/examples/research/client.js --proxy http://127.0.0.1:8080 --origin http://127.0.0.1:9000 [--requests 50]
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { proxy: { type: 'string', default: 'http://127.0.0.1:8080' }, origin: { type: 'string' }, requests: { type: 'string' } },
  });
  if (values.origin === undefined) throw new Error('--origin <url> is required');
  const requests = Number(values.requests ?? process.env.REQUESTS ?? 50);
  const summary = await runClient({ proxyUrl: values.proxy, originUrl: values.origin, requests });
  console.log(formatSummary(summary));
}
