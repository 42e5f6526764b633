import type { Duplex } from 'node:stream';
import { ProxyError } from './errors.js';
import { FlowControl } from './flow-control.js';

/** The abort reason of every closed connection (one shared value: no stack captured per close). */
const CLOSED = new ProxyError('ERR_PROXY_ABORTED', 'connection closed');

/** Where a connection goes: a host name, IPv4 or IPv6 address (without brackets) and a port. */
export interface Target {
  host: string;
  port: number;
}

/** `http`: one plain HTTP request is forwarded; `tunnel`: raw bytes after CONNECT. */
export type ConnectionMode = 'pending' | 'http' | 'tunnel';

/** A typed key for plugin state on the context: `const Key = stateKey<number>('my-plugin.count')`. */
export interface StateKey<T> {
  readonly description: string;
  /** Type carrier only; never set. */
  readonly __type?: T;
}
export const stateKey = <T>(description: string): StateKey<T> => ({ description });

/** What the connection lifecycle lends the context to do things only it may do. */
export interface ContextOwner {
  attachUpstream(ctx: ConnectionContext, socket: Duplex): void;
}

/** Byte tallies a counting plugin keeps: inbound is client → upstream, outbound upstream → client. */
export interface ByteCounts {
  inbound: number;
  outbound: number;
}

/**
 * One per accepted socket (Pingora's CTX): who the client is, where it goes, the two flow
 * controls, and a typed slot for plugin state. Plugins read and write it from their operators.
 */
export class ConnectionContext {
  /** Where the connection goes, set by the plugin that routes the request. */
  target?: Target;
  /** What kind of connection this turned out to be. */
  mode: ConnectionMode = 'pending';
  /** Flow control over the client socket (inbound source). */
  readonly inboundFlow: FlowControl;
  /** Flow control over the upstream socket (outbound source); set by attachUpstream. */
  outboundFlow?: FlowControl;
  /** The upstream socket once dialled. */
  upstream?: Duplex;
  /** True once any byte went to the client: an error then destroys instead of answering. */
  responseStarted = false;
  /** Byte tallies kept by counting plugins. */
  readonly bytes: ByteCounts = { inbound: 0, outbound: 0 };
  // Created on first use: most connections never need them, and thousands of idle tunnels
  // would each pay for them.
  private controller?: AbortController;
  private state?: Map<StateKey<unknown>, unknown>;
  private closed = false;

  constructor(
    /** Connection number, unique within the process. */
    readonly id: number,
    /** The client socket. */
    readonly client: Duplex,
    /** Client address and port as seen by the listener. */
    readonly clientAddress: { address: string; port: number },
    /** `performance.now()` when the connection was accepted. */
    readonly startedAt: number,
    private readonly owner: ContextOwner,
  ) {
    this.inboundFlow = new FlowControl(client);
  }

  /** Aborted when the connection closes, for any reason; plugins stop timers and work with it. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.closed) this.controller.abort(CLOSED);
    }
    return this.controller.signal;
  }

  /** Called by the lifecycle once every socket has closed. */
  close(): void {
    this.closed = true;
    this.controller?.abort(CLOSED);
  }

  /** Hands the dialled upstream socket to the lifecycle, which starts the outbound pipeline. */
  attachUpstream(socket: Duplex): void {
    this.owner.attachUpstream(this, socket);
  }

  /** Reads plugin state. */
  get<T>(key: StateKey<T>): T | undefined {
    return this.state?.get(key) as T | undefined;
  }

  /** Writes plugin state. */
  set<T>(key: StateKey<T>, value: T): void {
    (this.state ??= new Map()).set(key, value);
  }
}
