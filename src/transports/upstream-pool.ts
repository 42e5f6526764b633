import type { Duplex } from 'node:stream';
import type { Target } from '../core/context.js';

/** Limits of an {@link UpstreamPool}. */
export interface UpstreamPoolOptions {
  /** Idle connections kept per origin (host:port); more are closed. */
  maxIdlePerOrigin: number;
  /** How long an idle connection is kept, in ms. */
  idleTimeoutMs: number;
}

interface Idle {
  socket: Duplex;
  timer: NodeJS.Timeout;
  drop: () => void;
}

/**
 * Kept-alive upstream connections per origin, shared by every client connection. A connection
 * comes back only after its response was read to the end; while idle, any byte, FIN or error
 * from the upstream, or the idle timeout, closes it. The most recently used is handed out first.
 */
export class UpstreamPool {
  private readonly idle = new Map<string, Idle[]>();

  constructor(private readonly options: UpstreamPoolOptions) {}

  /** An idle connection to `target`, taken out of the pool, or undefined. */
  take(target: Target): Duplex | undefined {
    const list = this.idle.get(key(target));
    const entry = list?.pop();
    if (!entry) return undefined;
    if (list!.length === 0) this.idle.delete(key(target));
    this.forget(entry);
    return entry.socket;
  }

  /** Gives a connection back: kept when reusable and there is room, closed otherwise. */
  give(target: Target, socket: Duplex, reusable: boolean): void {
    const id = key(target);
    const list = this.idle.get(id) ?? [];
    if (!reusable || socket.destroyed || list.length >= this.options.maxIdlePerOrigin) {
      socket.destroy();
      return;
    }
    const drop = () => {
      this.remove(id, entry);
      socket.destroy();
    };
    const entry: Idle = { socket, timer: setTimeout(drop, this.options.idleTimeoutMs), drop };
    entry.timer.unref();
    // An idle upstream has nothing to say: data, a FIN or an error all mean it is unusable.
    socket.on('data', drop);
    socket.on('end', drop);
    socket.on('close', drop);
    socket.resume();
    list.push(entry);
    this.idle.set(id, list);
  }

  /** Idle connections held now, for one origin or in all. */
  size(target?: Target): number {
    if (target) return this.idle.get(key(target))?.length ?? 0;
    let total = 0;
    for (const list of this.idle.values()) total += list.length;
    return total;
  }

  /** Closes every idle connection. */
  close(): void {
    for (const list of [...this.idle.values()]) for (const entry of [...list]) entry.drop();
    this.idle.clear();
  }

  private remove(id: string, entry: Idle): void {
    const list = this.idle.get(id);
    if (!list) return;
    const at = list.indexOf(entry);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.idle.delete(id);
    this.forget(entry);
  }

  private forget(entry: Idle): void {
    clearTimeout(entry.timer);
    entry.socket.off('data', entry.drop);
    entry.socket.off('end', entry.drop);
    entry.socket.off('close', entry.drop);
    entry.socket.pause();
  }
}

function key(target: Target): string {
  return `${target.host}:${target.port}`;
}
