import test from 'ava';
import { proxiedRequest, startHttpOrigin, startProxy } from '../helpers/net.js';

test('a plain GET with an absolute URL reaches the origin in origin-form', async (t) => {
  const origin = await startHttpOrigin((request, response) => {
    response.end(JSON.stringify({ url: request.url, headers: request.rawHeaders }));
  });
  const proxy = await startProxy();
  try {
    const response = await proxiedRequest(proxy.port, `http://127.0.0.1:${origin.port}/a/b?c=1#frag`, {
      headers: { 'X-Keep-Me': 'Yes', Connection: 'x-drop', 'X-Drop': '1', 'Proxy-Connection': 'keep-alive' },
    });
    t.is(response.status, 200);
    const seen = JSON.parse(response.body.toString()) as { url: string; headers: string[] };
    t.is(seen.url, '/a/b?c=1');
    t.true(seen.headers.includes('X-Keep-Me'));
    t.false(seen.headers.includes('X-Drop'));
    t.false(seen.headers.map((h) => h.toLowerCase()).includes('proxy-connection'));
    t.is(seen.headers[seen.headers.indexOf('Via') + 1], '1.1 proxyline');
  } finally {
    await proxy.close();
    await origin.close();
  }
});
