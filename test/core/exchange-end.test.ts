// The onExchangeEnd hook: once per request when it is over, with final byte counts; tunnels at
// close; a failure outside any request with no exchange; always before onClose.
import test from 'ava';
import type { ProxyPlugin } from '../../src/core/plugin.js';
import { stage } from '../../src/core/stage.js';
import { exchange, get, sleep, startNumberingOrigin, withClient } from '../helpers/keep-alive.js';
import { readAll, readUntil, rawExchange, startProxy, startRawOrigin, withTunnel } from '../helpers/net.js';

interface Call {
  hook: 'end' | 'close';
  id?: number;
  method?: string;
  status?: number;
  bytesOut?: number;
  error?: string;
}

/** A plugin with no stage that notes every hook call. */
function recorder(): { plugin: ProxyPlugin; calls: Call[] } {
  const calls: Call[] = [];
  const plugin: ProxyPlugin = {
    name: 'recorder',
    onExchangeEnd: (_ctx, ended, error) =>
      calls.push({
        hook: 'end',
        id: ended?.id,
        method: ended?.request.method,
        status: ended?.response?.status,
        bytesOut: ended?.bytes.outbound,
        error: error?.code,
      }),
    onClose: (_ctx, error) => calls.push({ hook: 'close', error: error?.code }),
  };
  return { plugin, calls };
}

/** Waits (at most 5 s) until `done` holds. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await sleep(10);
}

const ROUTING = ['head-parser', 'connect-handler', 'http-forward', 'upstream-dialer'];

test('kept-alive requests: one call each once its response is written, with its final outbound bytes; none more at a clean close', async (t) => {
  const origin = await startNumberingOrigin();
  const { plugin, calls } = recorder();
  // byte-counter first counts what the client gets; the outbound chain runs in reverse, so a stage
  // in the recorder's place would see the response's end before byte-counter counted it.
  await withClient(startProxy({ plugins: ['byte-counter', plugin, ...ROUTING] }), [origin], async (client) => {
    const first = await exchange(client, get(origin.port, '/one'));
    const second = await exchange(client, get(origin.port, '/two'));
    await until(() => calls.length >= 2);
    t.deepEqual(calls, [
      { hook: 'end', id: 1, method: 'GET', status: 200, bytesOut: first.raw.length, error: undefined },
      { hook: 'end', id: 2, method: 'GET', status: 200, bytesOut: second.raw.length, error: undefined },
    ]);
    client.socket.end();
    await until(() => calls.length >= 3);
    t.deepEqual(calls.slice(2), [{ hook: 'close', error: undefined }]);
  });
});

test('a CONNECT tunnel: one call when the connection closes, before onClose', async (t) => {
  const origin = await startRawOrigin((socket) => socket.pipe(socket));
  const { plugin, calls } = recorder();
  await withTunnel(startProxy({ plugins: [plugin, ...ROUTING] }), `127.0.0.1:${origin.port}`, [origin], async ({ socket }) => {
    socket.write('ping');
    await readUntil(socket, (text) => text.includes('ping'));
    t.deepEqual(calls, [], 'nothing while the tunnel is open');
    const rest = readAll(socket);
    socket.end();
    await rest;
    await until(() => calls.length >= 2);
    t.deepEqual(
      calls.map(({ hook, method, status, error }) => ({ hook, method, status, error })),
      [
        { hook: 'end', method: 'CONNECT', status: 200, error: undefined },
        { hook: 'close', method: undefined, status: undefined, error: undefined },
      ],
    );
  });
});

test('a connection that fails outside any request: one call with no exchange and the error; a hook that throws harms nothing', async (t) => {
  const { plugin, calls } = recorder();
  const broken: ProxyPlugin = {
    name: 'broken',
    inbound: () => {
      throw new Error('cannot build');
    },
    onExchangeEnd: () => {
      throw new Error('fails too');
    },
  };
  const proxy = await startProxy({ plugins: [broken, plugin, ...ROUTING] });
  try {
    const answer = await rawExchange(proxy.port, 'GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n\r\n', { end: true });
    t.regex(answer, /^HTTP\/1\.1 500 /);
    await until(() => calls.length >= 2);
    t.deepEqual(calls, [
      { hook: 'end', id: undefined, method: undefined, status: undefined, bytesOut: undefined, error: 'ERR_PROXY_INTERNAL' },
      { hook: 'close', error: 'ERR_PROXY_INTERNAL' },
    ]);
  } finally {
    await proxy.close();
  }
});

test('a stage whose constructor throws (stages are linked directly at connection start) fails that connection with 500, not the proxy', async (t) => {
  const { plugin, calls } = recorder();
  const broken: ProxyPlugin = {
    name: 'broken-stage',
    inbound: () =>
      stage(() => {
        throw new Error('cannot build the stage');
      }),
  };
  const proxy = await startProxy({ plugins: [plugin, broken, ...ROUTING] });
  try {
    for (let i = 0; i < 2; i++) {
      const answer = await rawExchange(proxy.port, 'GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n\r\n', { end: true });
      t.regex(answer, /^HTTP\/1\.1 500 /, `connection ${i + 1} is answered`);
    }
    await until(() => calls.filter((call) => call.hook === 'close').length === 2);
    t.deepEqual(
      calls.filter((call) => call.hook === 'close'),
      [
        { hook: 'close', error: 'ERR_PROXY_INTERNAL' },
        { hook: 'close', error: 'ERR_PROXY_INTERNAL' },
      ],
    );
  } finally {
    await proxy.close();
  }
});
