import path from 'node:path';
import test from 'ava';
import { container } from 'tsyringe';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import { createProxy, createProxyFromConfig } from '../../src/proxy.js';
import { ProxyError } from '../../src/core/errors.js';
import { exchange, get, header, openClient, sleep } from '../helpers/keep-alive.js';
import { ROOT, startHttpOrigin } from '../helpers/net.js';

test('examples/rate-limit/plugins.json: 3 requests per 10 s window, the 4th gets 429 with Retry-After', async (t) => {
  const origin = await startHttpOrigin((request, response) => {
    request.resume();
    response.end(`ok ${request.url}`);
  });
  const services = container.createChildContainer();
  services.registerInstance(Logger, new SilentLogger());
  const proxy = await createProxyFromConfig(path.join(ROOT, 'examples/rate-limit/plugins.json'), { container: services, port: 0, gracePeriodMs: 0 });
  const { port } = await proxy.listen();
  try {
    // The windows are aligned to the clock: start early in one, so the 4 requests share it.
    const intoWindow = Date.now() % 10_000;
    if (intoWindow > 8_000) await sleep(10_000 - intoWindow + 10);
    // Three requests on one kept-alive connection and one on another: the budget is per client IP.
    const first = await openClient(port);
    const second = await openClient(port);
    try {
      for (const target of ['/1', '/2', '/3']) {
        const response = await exchange(first, get(origin.port, target));
        t.is(response.status, 200);
        t.is(response.body, `ok ${target}`);
      }
      const refused = await exchange(second, get(origin.port, '/4'));
      t.is(refused.status, 429);
      t.is(refused.body, 'too many requests, slow down\n');
      const retryAfter = Number(header(refused, 'retry-after'));
      t.true(retryAfter >= 1 && retryAfter <= 10, `Retry-After: ${header(refused, 'retry-after')}`);
      t.is(header(refused, 'connection'), undefined, 'a refusal keeps the connection open');
    } finally {
      first.socket.destroy();
      second.socket.destroy();
    }
  } finally {
    await proxy.close(0);
    await origin.close();
  }
});

test('a bad fixed-window option stops start-up with ERR_PROXY_CONFIG', async (t) => {
  const error = await t.throwsAsync(
    createProxy({
      port: 0,
      baseDir: ROOT,
      source: 'test',
      plugins: ['head-parser', { name: 'fixed-window', module: 'dist/examples/rate-limit/fixed-window.plugin.js', options: { requestsPerWindow: 0 } }],
    }),
    { instanceOf: ProxyError },
  );
  t.is(error?.code, 'ERR_PROXY_CONFIG');
  t.regex(error?.message ?? '', /^test: plugins\[1\] \("fixed-window"\) options\.requestsPerWindow: expected >= 1, found 0$/);
});
