import type { Duplex } from 'node:stream';
import { ProxyError } from './errors.js';
import { FlowControl } from './flow-control.js';
import type { PeerAddress, Target } from './transport.js';

export type { Target };

/** Pipelined requests a client may have waiting for responses before its reads pause. */
export const MAX_IN_FLIGHT = 32;

/** The abort reason of every closed connection (one shared value: no stack captured per close). */
const CLOSED = new ProxyError('ERR_PROXY_ABORTED', 'connection closed');

/** `http`: plain HTTP requests are forwarded; `tunnel`: raw bytes after a CONNECT or a 101. */
export type ConnectionMode = 'pending' | 'http' | 'tunnel';

/** A typed key for plugin state on the context: `const Key = stateKey<number>('my-plugin.count')`. */
export interface StateKey<T> {
  /** Names the key in messages; keys match by identity, so two keys may share a description. */
  readonly description: string;
  /** Type carrier only; never set. */
  readonly __type?: T;
}
/** Makes a key for {@link ConnectionContext.get} and `set`; create it once per module, not per connection. */
export const stateKey = <T>(description: string): StateKey<T> => ({ description });

/** Byte tallies a counting plugin keeps: inbound is client → upstream, outbound upstream → client. */
export interface ByteCounts {
  /** Bytes towards the upstream (client → upstream). */
  inbound: number;
  /** Bytes towards the client (upstream → client). */
  outbound: number;
}

/**
 * One per accepted socket (Pingora's CTX): who the client is, where it goes, the two flow
 * controls, and a typed slot for plugin state. Plugins read and write it from their operators.
 */
export class ConnectionContext {
  /** What kind of connection this turned out to be. */
  mode: ConnectionMode = 'pending';
  /** Flow control over the client socket (inbound source). */
  readonly inboundFlow: FlowControl;
  /** Flow control over the upstream whose response is being relayed (outbound source). */
  readonly outboundFlow = new FlowControl();
  /** Requests sent (or refused) whose response has not been relayed completely yet. */
  inFlight = 0;
  /** True once any byte went to the client. */
  responseStarted = false;
  /**
   * True while part of a request (head or body) has been read and not all of it: kept by the
   * plugin that parses requests (`head-parser`), read by a graceful shutdown.
   */
  receiving = false;
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
    readonly clientAddress: PeerAddress,
    /** `performance.now()` when the connection was accepted. */
    readonly startedAt: number,
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

  /**
   * Counts a request that went upstream (or was refused) and awaits its response. Past
   * {@link MAX_IN_FLIGHT} pipelined requests the client is held (reason `pipeline`), so one client
   * cannot open an unbounded number of upstream connections.
   */
  exchangeStarted(): void {
    if (++this.inFlight >= MAX_IN_FLIGHT) this.inboundFlow.hold('pipeline');
  }

  /** Counts a response relayed to its end (or answered with an error). */
  exchangeEnded(): void {
    if (--this.inFlight < MAX_IN_FLIGHT) this.inboundFlow.release('pipeline');
  }

  /** Called by the lifecycle once every socket has closed. */
  close(): void {
    this.closed = true;
    this.controller?.abort(CLOSED);
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
