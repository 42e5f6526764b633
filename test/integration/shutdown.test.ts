import test from 'ava';
import { connectTo, startProxy } from '../helpers/net.js';
import { closed, pollUntil } from '../helpers/wire.js';

// ProxyServer.close(gracePeriodMs) promises to destroy what is left after the grace period.
test('close() with a grace period destroys an idle open connection and resolves', async (t) => {
  const proxy = await startProxy({
    plugins: [{ name: 'head-parser', options: { headersTimeoutMs: 0 } }, 'connect-handler', 'http-forward', 'upstream-dialer'],
  });
  const socket = await connectTo(proxy.port);
  try {
    t.true(await pollUntil(() => proxy.server.connections === 1));
    let resolved = false;
    const closing = proxy.server.close(100).then(() => (resolved = true));
    // Safety limit: far beyond the 100 ms grace period.
    const inTime = await pollUntil(() => resolved, 200, 25);
    t.true(inTime, 'close(100) should resolve once the grace period has passed');
    t.true(socket.destroyed || (await pollUntil(() => socket.destroyed, 40)), 'the client connection should be closed by the proxy');
    socket.destroy();
    await closing;
  } finally {
    socket.destroy();
    await closed(socket);
  }
});
