import type { Duplex } from 'node:stream';
import type { Target } from '../core/context.js';
import type { UpstreamHop } from '../core/transport.js';
import { setOwner, type SocketOwner } from '../core/socket-owner.js';

/** Limits of an {@link UpstreamPool}. */
export interface UpstreamPoolOptions {
  /** Idle connections kept per origin (host:port, and the route that reached it); more are closed. */
  maxIdlePerOrigin: number;
  /** How long an idle connection is kept, in ms. */
  idleTimeoutMs: number;
}

/** One idle connection; as its socket's owner, it drops it on any event. */
class IdleUpstream implements SocketOwner {
  /** `performance.now()` when it became idle. */
  readonly since = performance.now();

  constructor(
    private readonly pool: UpstreamPool,
    readonly key: string,
    readonly socket: Duplex,
  ) {}

  // An idle upstream has nothing to say: data, a FIN or a close all mean it is unusable.
  ownedData(): void {
    this.pool.drop(this);
  }

  ownedEnd(): void {
    this.pool.drop(this);
  }

  ownedClose(): void {
    this.pool.drop(this);
  }
}

/**
 * Kept-alive upstream connections per origin and route (direct, or the parent proxy it went
 * through: a connection through one parent never serves another route), shared by every client
 * connection. A connection
 * comes back only after its response was read to the end; while idle, any byte, FIN or error
 * from the upstream closes it. The most recently used is handed out first. Expiry is a sweep
 * (every quarter of the idle timeout, at most every second) rather than a timer per connection,
 * since connections come and go once per request; `take` never hands out an expired one.
 */
export class UpstreamPool {
  private readonly idle = new Map<string, IdleUpstream[]>();
  private sweeper?: NodeJS.Timeout;
  /** The last origin's key, kept: most requests go where the one before went. */
  private last: { host: string; port: number; key: string } = { host: '', port: 0, key: ':0' };

  constructor(private readonly options: UpstreamPoolOptions) {}

  /** An idle connection to `target` (through `hop`; default direct), taken out of the pool, or undefined. */
  take(target: Target, hop?: UpstreamHop): Duplex | undefined {
    const id = this.key(target, hop);
    const list = this.idle.get(id);
    if (!list) return undefined;
    const fresh = performance.now() - this.options.idleTimeoutMs;
    let entry: IdleUpstream | undefined;
    while ((entry = list.pop()) && entry.since < fresh) close(entry);
    if (list.length === 0) this.idle.delete(id);
    if (!entry) return undefined;
    setOwner(entry.socket, undefined);
    return entry.socket;
  }

  /** Gives a connection back: kept when reusable and there is room, closed otherwise. */
  give(target: Target, socket: Duplex, reusable: boolean, hop?: UpstreamHop): void {
    const id = this.key(target, hop);
    const list = this.idle.get(id);
    if (!reusable || socket.destroyed || (list?.length ?? 0) >= this.options.maxIdlePerOrigin) {
      socket.destroy();
      return;
    }
    const entry = new IdleUpstream(this, id, socket);
    setOwner(socket, entry);
    // Reading is how a FIN or a stray byte is noticed; the last owner may have left it paused.
    if (socket.isPaused()) socket.resume();
    if (list) list.push(entry);
    else this.idle.set(id, [entry]);
    this.sweeper ??= this.startSweeper();
  }

  /** Idle connections held now, for one origin (through `hop`; default direct) or in all. */
  size(target?: Target, hop?: UpstreamHop): number {
    if (target) return this.idle.get(this.key(target, hop))?.length ?? 0;
    let total = 0;
    for (const list of this.idle.values()) total += list.length;
    return total;
  }

  /** Closes every idle connection. */
  close(): void {
    for (const list of this.idle.values()) for (const entry of list) close(entry);
    this.idle.clear();
    this.stopSweeper();
  }

  /** Takes an idle connection out of the pool and closes it. @internal */
  drop(entry: IdleUpstream): void {
    const list = this.idle.get(entry.key);
    const at = list ? list.indexOf(entry) : -1;
    if (at < 0) return;
    list!.splice(at, 1);
    if (list!.length === 0) this.idle.delete(entry.key);
    close(entry);
  }

  /** `host:port`, the pool's key for an origin reached directly; the parent's key before it otherwise. */
  private key(target: Target, hop?: UpstreamHop): string {
    if (hop !== undefined && hop !== 'direct') return `${hop.key} ${target.host}:${target.port}`;
    const { last } = this;
    if (target.host !== last.host || target.port !== last.port) this.last = { host: target.host, port: target.port, key: `${target.host}:${target.port}` };
    return this.last.key;
  }

  private startSweeper(): NodeJS.Timeout {
    const every = Math.max(10, Math.min(1000, this.options.idleTimeoutMs / 4));
    const timer = setInterval(() => this.sweep(), every);
    timer.unref();
    return timer;
  }

  private stopSweeper(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Closes the connections idle longer than the timeout: the oldest are first in each list. */
  private sweep(): void {
    const fresh = performance.now() - this.options.idleTimeoutMs;
    for (const [id, list] of this.idle) {
      let expired = 0;
      while (expired < list.length && list[expired]!.since < fresh) expired++;
      if (expired === 0) continue;
      for (const entry of list.splice(0, expired)) close(entry);
      if (list.length === 0) this.idle.delete(id);
    }
    if (this.idle.size === 0) this.stopSweeper();
  }
}

/** Closes an idle connection that is already out of its list. */
function close(entry: IdleUpstream): void {
  setOwner(entry.socket, undefined);
  entry.socket.destroy();
}
