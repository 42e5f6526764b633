// reflect-metadata must load before tsyringe: it is the first import of every entry point.
import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import { tap } from 'rxjs';
import type { DependencyContainer } from 'tsyringe';
import { createProxy, HeadParserPlugin, type ProxyPlugin, type ProxyServer } from 'proxyline';

/** A proxy composed in code, and the number of requests it has seen from each client address. */
export interface CountingProxy {
  proxy: ProxyServer;
  requestsByClient: Map<string, number>;
}

/** Builds (but does not start) the default chain plus an inline plugin that counts requests per client. */
export async function createCountingProxy(options: { host?: string; port?: number; container?: DependencyContainer } = {}): Promise<CountingProxy> {
  const requestsByClient = new Map<string, number>();

  // A plugin can be a plain object: a name and the operators. No class, no DI, no options schema.
  const requestCounter: ProxyPlugin = {
    name: 'request-counter',
    inbound: (ctx) =>
      tap((event) => {
        if (event.kind !== 'request-head') return;
        const client = ctx.clientAddress.address;
        requestsByClient.set(client, (requestsByClient.get(client) ?? 0) + 1);
      }),
  };

  const proxy = await createProxy({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8080,
    container: options.container,
    plugins: [
      { plugin: HeadParserPlugin, options: { headersTimeoutMs: 5000 } }, // a class with options
      'connect-handler', // built-ins by name
      'http-forward',
      requestCounter, // an instance
      'upstream-dialer',
      'byte-counter',
      { name: 'logger', options: { format: 'json' } }, // a plugins.json-style entry
    ],
  });
  return { proxy, requestsByClient };
}

// Started only when run directly (`node dist/examples/compose-in-code/main.js`), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { proxy, requestsByClient } = await createCountingProxy({ port: Number(process.env.PORT ?? 8080) });
  await proxy.listen();
  const { host, port } = proxy.address()!; // the bound address, also returned by listen()
  console.log(`listening on http://${host}:${port}; Ctrl-C to stop`);
  process.once('SIGINT', () => {
    void proxy.close().then(() => {
      console.log('requests per client:', Object.fromEntries(requestsByClient));
    });
  });
}
