import type { Registry } from 'prom-client';
import type { InjectionToken } from 'tsyringe';

/**
 * Token for the prom-client Registry the `metrics` plugin records into and the admin listener
 * serves. Its own module, without prom-client at run time, so the token costs nothing to import.
 */
export const MetricsRegistry: InjectionToken<Registry> = Symbol('MetricsRegistry');
