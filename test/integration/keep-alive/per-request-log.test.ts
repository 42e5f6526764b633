// The logger plugin with keep-alive: one record per request (not per connection), each with the
// method, target, status, bytes each way and a duration; one record per tunnel. Field names are not
// fixed yet, so the checks look for the values in the record, not for keys.
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { container } from 'tsyringe';
import { Logger, type LogFields } from '../../../src/core/logger.js';
import { startHttpOrigin, startProxy, startRawOrigin } from '../../helpers/net.js';
import { pollUntil } from '../../helpers/wire.js';
import { exchange, sleep, withClient } from '../../helpers/keep-alive.js';

/** Keeps every record as the JSON text of `{ level, message, fields }`. */
class CollectingLogger implements Logger {
  readonly records: string[] = [];
  info(message: string, fields?: LogFields): void {
    this.records.push(JSON.stringify({ level: 'info', message, fields }));
  }
  warn(message: string, fields?: LogFields): void {
    this.records.push(JSON.stringify({ level: 'warn', message, fields }));
  }
  error(message: string, fields?: LogFields): void {
    this.records.push(JSON.stringify({ level: 'error', message, fields }));
  }
}

const chain = ['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer', 'byte-counter', { name: 'logger', options: { format: 'json' } }];

/** A proxy whose logger collects records. */
async function loggedProxy() {
  const logger = new CollectingLogger();
  const child = container.createChildContainer();
  child.registerInstance(Logger, logger);
  const proxy = await startProxy({ container: child, plugins: chain });
  return { proxy, logger };
}

/** Every number in a record (a message that is itself JSON is looked into too). */
function numbers(record: string): number[] {
  const found: number[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === 'number') found.push(value);
    else if (typeof value === 'string') {
      if (/^\s*[{[]/.test(value)) {
        try {
          walk(JSON.parse(value));
        } catch {
          // not JSON: a plain string
        }
      }
    } else if (value && typeof value === 'object') for (const inner of Object.values(value)) walk(inner);
  };
  walk(JSON.parse(record));
  return found;
}

/** Whether the record holds the status, as a number or as text. */
const hasStatus = (record: string, status: number) => numbers(record).includes(status) || record.includes(`"${status}"`) || record.includes(` ${status} `);

test('two requests on one kept-alive connection produce two records, each with its own values', async (t) => {
  // Sizes chosen so that per-request and per-connection byte counts cannot be confused.
  const answers: Record<string, number> = { '/one': 3000, '/two': 7000 };
  const origin = await startHttpOrigin((request: http.IncomingMessage, response: http.ServerResponse) => {
    request.resume();
    request.on('end', () => response.end('z'.repeat(answers[request.url ?? ''] ?? 1)));
  });
  const { proxy, logger } = await loggedProxy();
  await withClient(proxy, [origin], async (client) => {
    const post = (path: string, size: number) =>
      `POST http://127.0.0.1:${origin.port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nContent-Length: ${size}\r\n\r\n${'q'.repeat(size)}`;
    const first = await exchange(client, post('/one', 1000));
    t.is(first.body.length, 3000);
    const second = await exchange(client, post('/two', 5000));
    t.is(second.body.length, 7000);
    client.socket.destroy();
    const mentions = (path: string) => logger.records.filter((r) => r.includes(path));
    t.true(await pollUntil(() => mentions('/one').length > 0 && mentions('/two').length > 0, 120), `records: ${JSON.stringify(logger.records)}`);
    await sleep(100); // a late duplicate record would show up here
    const one = mentions('/one');
    const two = mentions('/two');
    t.is(one.length, 1, `records: ${JSON.stringify(logger.records)}`);
    t.is(two.length, 1, `records: ${JSON.stringify(logger.records)}`);
    t.not(one[0], two[0], 'two records, not one naming both requests');
    for (const [record, inBody, outBody] of [
      [one[0]!, 1000, 3000],
      [two[0]!, 5000, 7000],
    ] as const) {
      t.true(record.includes('POST'), `method in ${record}`);
      t.true(record.includes(String(origin.port)), `target in ${record}`);
      t.true(hasStatus(record, 200), `status in ${record}`);
      const values = numbers(record);
      // Bytes in and out for this request alone: at least its body, at most body and a head.
      t.true(
        values.some((n) => n >= inBody && n <= inBody + 600),
        `bytes in (~${inBody}) in ${record}`,
      );
      t.true(
        values.some((n) => n >= outBody && n <= outBody + 600),
        `bytes out (~${outBody}) in ${record}`,
      );
      t.true(values.length >= 3, `bytes in, bytes out and a duration in ${record}`);
    }
  });
});

test('a CONNECT tunnel produces one record', async (t) => {
  const origin = await startRawOrigin((socket: net.Socket) => socket.pipe(socket));
  const { proxy, logger } = await loggedProxy();
  await withClient(proxy, [origin], async (client) => {
    const authority = `127.0.0.1:${origin.port}`;
    client.socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    const established = await client.reader.next({ method: 'HEAD' });
    t.is(established.status, 200);
    client.socket.write('ping-through-tunnel');
    t.true(await pollUntil(() => client.reader.pending === 'ping-through-tunnel', 120), 'the tunnel echoes');
    client.socket.end();
    await client.reader.waitEnd();
    const mentions = () => logger.records.filter((r) => r.includes(String(origin.port)));
    t.true(await pollUntil(() => mentions().length > 0, 120), `records: ${JSON.stringify(logger.records)}`);
    await sleep(100); // a late duplicate record would show up here
    t.is(mentions().length, 1, `records: ${JSON.stringify(logger.records)}`);
    t.true(mentions()[0]!.includes('CONNECT'), mentions()[0]);
  });
});
