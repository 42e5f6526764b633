// Small stand-in plugins that tests put in a chain.
import { tap } from 'rxjs';
import type { ProxyEvent } from '../../src/core/events.js';
import type { ProxyPlugin } from '../../src/core/plugin.js';

/**
 * A stand-in for proxy-auth: each request's user is its X-User header, when it has one, so a test
 * can act as several users without credentials.
 */
export function userFromHeader(): ProxyPlugin {
  return {
    name: 'set-user',
    inbound: () =>
      tap((event: ProxyEvent) => {
        if (event.kind !== 'request-head') return;
        const user = event.head.headers.find(([name]) => name.toLowerCase() === 'x-user')?.[1];
        if (user !== undefined) event.exchange.user = user;
      }),
  };
}
