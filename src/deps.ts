import type { Store } from "./store/store.js";
import type { Clock } from "./time.js";

/** What every operation needs, passed in explicitly (no module-level singletons). */
export interface Deps {
  readonly store: Store;
  readonly clock: Clock;
}
