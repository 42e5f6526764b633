// What the rate-limit tests share, whatever store the plugin uses.
import { once } from 'node:events';
import net from 'node:net';
import type { PluginSpec } from '../../src/core/registry.js';
import { exchange, get, ResponseReader, type WireResponse } from './keep-alive.js';
import { startHttpOrigin } from './net.js';

/** The routing chain with one `rate-limit` entry of `options`. */
export const rateLimitChain = (options: Record<string, unknown>): PluginSpec[] => [
  'head-parser',
  'connect-handler',
  'http-forward',
  { name: 'rate-limit', options },
  'upstream-dialer',
];

/** An origin answering `hello` to everything. */
export const helloOrigin = () =>
  startHttpOrigin((request, response) => {
    request.resume();
    response.end('hello');
  });

/** One request on a new connection to the proxy at `host`; the connection is destroyed after. */
export async function oneRequest(proxyPort: number, originPort: number, host = '127.0.0.1'): Promise<WireResponse> {
  const socket = net.connect({ host, port: proxyPort });
  socket.on('error', () => {});
  await once(socket, 'connect');
  const client = { socket, reader: new ResponseReader(socket) };
  try {
    return await exchange(client, get(originPort, '/'));
  } finally {
    client.socket.destroy();
  }
}
