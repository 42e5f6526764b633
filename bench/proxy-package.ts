// The `proxy` npm package (node:http-based forward proxy, v4) as a child process, for the
// keep-alive comparison. Upstream it uses node:http's global agent, which keeps connections
// alive since Node 19.
import http from 'node:http';
import { createProxy } from 'proxy';

const port = Number(process.argv[process.argv.indexOf('--port') + 1] ?? 0);
const server = createProxy(http.createServer());
server.listen(port, '127.0.0.1', () => {
  const address = server.address() as { address: string; port: number };
  process.stdout.write(`proxy-package listening on http://${address.address}:${address.port}\n`);
});
