import test from 'ava';
import { container } from 'tsyringe';
import { createCountingProxy } from '../../examples/compose-in-code/main.js';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import { proxiedRequest, startHttpOrigin } from '../helpers/net.js';

test('the compose-in-code proxy forwards requests and counts them per client', async (t) => {
  const origin = await startHttpOrigin((request, response) => response.end(`origin saw ${request.url}`));
  const services = container.createChildContainer();
  services.registerInstance(Logger, new SilentLogger());
  const { proxy, requestsByClient } = await createCountingProxy({ port: 0, container: services });
  t.is(proxy.address(), undefined); // built, not started: importing main.ts starts nothing
  const { port } = await proxy.listen();
  try {
    for (const path of ['/one', '/two']) {
      const response = await proxiedRequest(port, `http://127.0.0.1:${origin.port}${path}`);
      t.is(response.status, 200);
      t.is(response.body.toString(), `origin saw ${path}`);
    }
    t.deepEqual(Object.fromEntries(requestsByClient), { '127.0.0.1': 2 });
  } finally {
    await proxy.close(0);
    await origin.close();
  }
});
