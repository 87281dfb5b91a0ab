import { DEFAULT_WEBHOOKS, type WebhookConfig } from "./config.js";
import { Metrics } from "./metrics/metrics.js";
import { type Resolve, systemResolve } from "./network/address-policy.js";
import type { Store } from "./store/store.js";
import { type Clock, type ClockMs, systemClock, systemClockMs } from "./time.js";

/** What every operation needs, passed in explicitly (no module-level singletons). */
export interface Deps {
  readonly store: Store;
  /** Now, in whole seconds: what rows record. */
  readonly clock: Clock;
  /** Now, in epoch milliseconds: delivery schedules, leases and signature timestamps. */
  readonly clockMs: ClockMs;
  readonly webhooks: WebhookConfig;
  /** Resolves a host name to every address it has (tests pass a stub). */
  readonly resolve: Resolve;
  /** This process's Prometheus metrics (a registry of its own). */
  readonly metrics: Metrics;
}

/** Deps with the defaults: the system clocks and resolver, the default webhook settings. */
export const createDeps = (store: Store, overrides: Partial<Omit<Deps, "store">> = {}): Deps => ({
  store,
  clock: systemClock,
  clockMs: systemClockMs,
  webhooks: DEFAULT_WEBHOOKS,
  resolve: systemResolve,
  metrics: new Metrics(),
  ...overrides,
});
