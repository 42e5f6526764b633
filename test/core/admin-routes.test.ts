import http from 'node:http';
import test from 'ava';
import { Registry } from 'prom-client';
import { createAdminServer } from '../../src/admin.js';
import { AdminRouteTable, type AdminRequest } from '../../src/core/admin-routes.js';

test('AdminRouteTable: a prefix serves itself and the paths under it; taken, reserved and malformed prefixes throw; unregistering frees it', (t) => {
  const routes = new AdminRouteTable();
  const faults = () => ({ status: 200 });
  const other = () => ({ status: 201 });
  const stop = routes.register('/faults', faults);
  routes.register('/a/b', other);
  t.is(routes.find('/faults'), faults);
  t.is(routes.find('/faults/flaky-api'), faults);
  t.is(routes.find('/faults/x/y'), faults);
  t.is(routes.find('/faultsx'), undefined, 'a prefix matches whole segments');
  t.is(routes.find('/a/b/c'), other);
  t.is(routes.find('/a'), undefined);
  t.is(routes.find('/'), undefined);
  t.throws(() => routes.register('/faults', other), { message: 'admin route /faults: already served by another plugin' });
  t.throws(() => routes.register('/metrics', other), { message: 'admin route /metrics: the admin listener serves it itself' });
  t.throws(() => routes.register('faults', other), { message: 'admin route: expected a path like /name, found "faults"' });
  stop();
  t.is(routes.find('/faults'), undefined);
  routes.register('/faults', other);
  stop(); // a stale unregister leaves the new owner alone
  t.is(routes.find('/faults'), other);
});

/** One request to the admin listener: status, content type, body text, the Allow field. */
function request(port: number, method: string, path: string, body?: string | Buffer) {
  return new Promise<{ status: number; type?: string; text: string }>((resolve, reject) => {
    const sent = http.request({ host: '127.0.0.1', port, method, path, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: response.headers['content-type'], text }));
    });
    sent.on('error', reject);
    sent.end(body);
  });
}

test('the admin listener hands other paths to the registered routes: method, path and body in, JSON out; a throw is 500; a body over 1 MiB is 413; built-in paths stay its own', async (t) => {
  const routes = new AdminRouteTable();
  const seen: AdminRequest[] = [];
  routes.register('/things', (incoming) => {
    seen.push(incoming);
    if (incoming.path === '/things/boom') throw new Error('boom');
    if (incoming.method === 'DELETE') return { status: 204 };
    return { status: 200, json: { echo: incoming.body }, headers: { 'X-Route': 'things' } };
  });
  routes.register('/slow', async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return { status: 202, json: [1, 2] };
  });
  const admin = createAdminServer(new Registry(), { port: 0, routes });
  const { port } = await admin.listen();
  try {
    const put = await request(port, 'PUT', '/things/one?x=1', '{"a":1}');
    t.is(put.status, 200);
    t.is(put.type, 'application/json; charset=utf-8');
    t.deepEqual(JSON.parse(put.text), { echo: '{"a":1}' });
    t.like(seen[0], { method: 'PUT', path: '/things/one', body: '{"a":1}' });
    const gone = await request(port, 'DELETE', '/things/one');
    t.is(gone.status, 204);
    t.is(gone.text, '');
    t.deepEqual(JSON.parse((await request(port, 'GET', '/slow')).text), [1, 2]);
    const boom = await request(port, 'GET', '/things/boom');
    t.is(boom.status, 500);
    t.deepEqual(JSON.parse(boom.text), { error: '/things/boom: boom' });
    const large = await request(port, 'PUT', '/things', Buffer.alloc(1024 * 1024 + 1, 0x61));
    t.is(large.status, 413);
    t.is(seen.length, 3, 'a body too large reaches no handler');
    t.is((await request(port, 'GET', '/healthz')).text, 'ok\n');
    t.is((await request(port, 'GET', '/elsewhere')).status, 404);
  } finally {
    await admin.close();
  }
});
