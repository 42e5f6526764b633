import path from 'node:path';
import test from 'ava';
import { container } from 'tsyringe';
import { Logger, SilentLogger } from '../../src/core/logger.js';
import { createProxy, createProxyFromConfig } from '../../src/proxy.js';
import { ProxyError } from '../../src/core/errors.js';
import { proxiedRequest, ROOT, startHttpOrigin } from '../helpers/net.js';

test('examples/tagger/plugins.json adds X-Tagged-By to the request the origin receives', async (t) => {
  const origin = await startHttpOrigin((request, response) => response.end(JSON.stringify(request.rawHeaders)));
  const services = container.createChildContainer();
  services.registerInstance(Logger, new SilentLogger());
  const proxy = await createProxyFromConfig(path.join(ROOT, 'examples/tagger/plugins.json'), { container: services, port: 0, gracePeriodMs: 0 });
  const { port } = await proxy.listen();
  try {
    const response = await proxiedRequest(port, `http://127.0.0.1:${origin.port}/tag-me`, { headers: { 'X-Before': 'kept' } });
    t.is(response.status, 200);
    const headers = JSON.parse(response.body.toString()) as string[];
    t.is(headers[headers.indexOf('X-Tagged-By') + 1], 'proxyline');
    t.is(headers.filter((name) => name === 'X-Tagged-By').length, 1);
    t.is(headers[headers.indexOf('X-Before') + 1], 'kept');
  } finally {
    await proxy.close(0);
    await origin.close();
  }
});

test('a bad tagger option stops start-up with ERR_PROXY_CONFIG naming the entry and the option', async (t) => {
  const error = await t.throwsAsync(
    createProxy({
      port: 0,
      baseDir: ROOT,
      source: 'test',
      plugins: ['head-parser', { name: 'tagger', module: 'dist/examples/tagger/tagger.plugin.js', options: { header: 'Not A Token' } }],
    }),
    { instanceOf: ProxyError },
  );
  t.is(error?.code, 'ERR_PROXY_CONFIG');
  t.regex(error?.message ?? '', /^test: plugins\[1\] \("tagger"\) options\.header: expected to match pattern .*, found "Not A Token"$/);
});
