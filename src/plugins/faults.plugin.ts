import { randomInt } from 'node:crypto';
import type { MonoTypeOperatorFunction } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { AdminRoutes } from '../core/admin-routes.js';
import type { ConnectionContext } from '../core/context.js';
import type { ProxyEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { Logger } from '../core/logger.js';
import { PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { stage } from '../core/stage.js';
import { FAULTS_OPTIONS_SCHEMA, type FaultsOptions } from './faults/config.js';
import { faultsRoute } from './faults/control.js';
import { FaultSet, type FaultPlan } from './faults/fault-set.js';
import { InboundFaults } from './faults/inbound-faults.js';
import { OutboundFaults } from './faults/outbound-faults.js';
import type { StreamFaultFactory } from './faults/stream-chain.js';
import { createStreamFault } from './faults/stream-faults.js';

/**
 * Seeded fault injection, per request: each request (a tunnel: its CONNECT) draws every fault of
 * the list from a generator seeded by (seed, fault name, connection ordinal, request ordinal), so
 * a run replays exactly from its seed. A fault that fires is recorded on `exchange.faults` and
 * acts: `abort` answers in the origin's place, `drop` closes the client, `delay` holds the request
 * or the response head, `cut-response` ends the response early, and the byte-stream types act on
 * the bodies and tunnels. The list can be changed while the proxy runs through the admin
 * listener's `/faults` (GET, PUT, POST, DELETE). Place it after the routing plugins (`match.hosts`
 * and `match.ports` read the target) and before `upstream-dialer` (an abort dials nothing).
 */
@injectable()
export class FaultsPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'faults',
    optionsSchema: FAULTS_OPTIONS_SCHEMA,
    after: ['head-parser'],
    before: ['upstream-dialer'],
  };
  readonly name = FaultsPlugin.manifest.name;
  /** The faults in force and their seed: replaced whole (never changed in place) by `replace`. @internal */
  current: FaultSet;
  /** @internal */
  readonly plans = new WeakMap<Exchange, FaultPlan>();
  /** Makes the byte-stream faults. @internal (tests put a fake one here) */
  createStreamFault: StreamFaultFactory = createStreamFault;
  /** Connections seen, in the order `inbound` was called: the connection ordinal of each draw. */
  private connections = 0;
  private readonly unregister?: () => void;

  constructor(
    /** The validated options. */
    @inject(PluginOptions) options: FaultsOptions,
    @inject(Logger) logger: Logger,
    /** Present with an admin listener: `/faults` is served on it. */
    @inject(AdminRoutes, { isOptional: true }) routes?: AdminRoutes,
  ) {
    let { seed } = options;
    if (seed === undefined) {
      seed = randomInt(0, 2 ** 32);
      logger.info(`faults: seed ${seed} (set "seed": ${seed} to replay this run)`, { seed });
    }
    try {
      this.current = new FaultSet(seed, options.faults);
    } catch (error) {
      throw new Error(`options.${(error as Error).message}`, { cause: error });
    }
    this.unregister = routes?.register('/faults', faultsRoute(this));
  }

  /** Puts a new list in force for the requests and tunnels that start from now on (the admin routes). @internal */
  replace(faults: FaultSet): void {
    this.current = faults;
  }

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    const ordinal = ++this.connections;
    return stage((downstream) => new InboundFaults(downstream, ctx, this, ordinal));
  }

  outbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new OutboundFaults(downstream, ctx, this));
  }

  dispose(): void {
    this.unregister?.();
  }
}
