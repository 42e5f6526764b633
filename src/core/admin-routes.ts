import type { InjectionToken } from 'tsyringe';

/** A request to the admin listener, as a plugin's handler sees it. */
export interface AdminRequest {
  /** `GET`, `PUT`, … as sent. */
  readonly method: string;
  /** The path, without the query (`/faults/flaky-api`). */
  readonly path: string;
  /** The request body as UTF-8 text ("" when there is none). */
  readonly body: string;
}

/** What a handler answers; the admin listener frames it. */
export interface AdminResponse {
  /** HTTP status. */
  readonly status: number;
  /** Sent as JSON (`application/json`); absent: no body. */
  readonly json?: unknown;
  /** Extra response fields (say `Allow` with a 405). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Serves the admin requests under one path prefix. A throw or a rejection is answered 500. */
export type AdminHandler = (request: AdminRequest) => AdminResponse | Promise<AdminResponse>;

/**
 * Routes plugins offer on the admin listener (`--admin-port`), beside its own `/metrics` and
 * `/healthz`. The CLI registers one under {@link AdminRoutes} before the proxy is built; a plugin
 * injects it optionally, so without an admin listener it simply has no routes.
 */
export interface AdminRoutes {
  /**
   * Serves `prefix` and every path under it (`/faults` serves `/faults` and `/faults/x`) until the
   * returned function is called. Throws when the prefix is taken or is one of the listener's own.
   */
  register(prefix: string, handler: AdminHandler): () => void;
  /** The handler serving `path`, if any. */
  find(path: string): AdminHandler | undefined;
}

/** Token for the {@link AdminRoutes} service; absent when there is no admin listener. */
export const AdminRoutes: InjectionToken<AdminRoutes> = Symbol('AdminRoutes');

/** The paths the admin listener answers itself. */
const RESERVED = new Set(['/metrics', '/healthz']);

/** The {@link AdminRoutes} the CLI gives its admin listener: a table of prefixes. */
export class AdminRouteTable implements AdminRoutes {
  private readonly routes = new Map<string, AdminHandler>();

  register(prefix: string, handler: AdminHandler): () => void {
    checkPrefix(prefix);
    if (this.routes.has(prefix)) throw new Error(`admin route ${prefix}: already served by another plugin`);
    return this.replace(prefix, handler);
  }

  /** Serves `prefix` with `handler`, taking it over from whoever served it (a reloaded chain's plugin takes its predecessor's route). */
  replace(prefix: string, handler: AdminHandler): () => void {
    checkPrefix(prefix);
    this.routes.set(prefix, handler);
    return () => {
      if (this.routes.get(prefix) === handler) this.routes.delete(prefix);
    };
  }

  find(path: string): AdminHandler | undefined {
    // The longest registered prefix that is the path or a parent of it.
    for (let end = path.length; end > 0; end = path.lastIndexOf('/', end - 1)) {
      const handler = this.routes.get(path.slice(0, end));
      if (handler) return handler;
    }
    return undefined;
  }
}

function checkPrefix(prefix: string): void {
  if (!/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(prefix)) throw new Error(`admin route: expected a path like /name, found ${JSON.stringify(prefix)}`);
  if (RESERVED.has(prefix)) throw new Error(`admin route ${prefix}: the admin listener serves it itself`);
}

/**
 * The {@link AdminRoutes} a chain being reloaded registers into: its routes are only noted, so a
 * chain that fails to resolve changes nothing, and `commit()` puts them in the table, in place
 * of the running chain's (whose plugins' later unregistering leaves them alone).
 */
export class StagedRoutes implements AdminRoutes {
  /** Routes registered, with the function that takes each off the table once committed. */
  private readonly staged = new Map<string, { handler: AdminHandler; unregister?: () => void }>();

  constructor(private readonly table: AdminRouteTable) {}

  register(prefix: string, handler: AdminHandler): () => void {
    checkPrefix(prefix);
    if (this.staged.has(prefix)) throw new Error(`admin route ${prefix}: already served by another plugin`);
    const route: { handler: AdminHandler; unregister?: () => void } = { handler };
    this.staged.set(prefix, route);
    return () => {
      if (route.unregister) route.unregister();
      else if (this.staged.get(prefix) === route) this.staged.delete(prefix);
    };
  }

  find(path: string): AdminHandler | undefined {
    return this.table.find(path);
  }

  /** Serves the noted routes from the table, replacing the running chain's. */
  commit(): void {
    for (const [prefix, route] of this.staged) route.unregister = this.table.replace(prefix, route.handler);
  }
}
