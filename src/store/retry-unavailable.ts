import { setTimeout as sleep } from "node:timers/promises";
import { type ClockMs, systemClockMs } from "../time.js";
import { isUnavailable } from "./store.js";

export interface RetryOptions {
  /** Give up once this time (epoch ms) has passed. */
  until?: number;
  /** Give up when this aborts (the caller is stopping). */
  signal?: AbortSignal;
  /** The clock `until` is read against (epoch ms). */
  clockMs?: ClockMs;
}

const FIRST_PAUSE_MS = 100;
/** At most this long between tries, so a store that is back is used within a second. */
const MAX_PAUSE_MS = 1000;

/**
 * Runs `fn`, and runs it again after a pause each time it fails because the store is unavailable
 * (`isUnavailable`), until it succeeds, fails for another reason, `until` passes or `signal`
 * aborts — then the last error is thrown. For background work that must not lose what it holds
 * (a webhook attempt's outcome) to an outage.
 *
 * @example
 * await retryUnavailable(() => recordOutcome(deps, attempt), { signal: stopping });
 */
export async function retryUnavailable<T>(
  fn: () => Promise<T>,
  { until = Number.POSITIVE_INFINITY, signal, clockMs = systemClockMs }: RetryOptions = {},
): Promise<T> {
  let pause = FIRST_PAUSE_MS;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (!isUnavailable(error) || signal?.aborted || clockMs() + pause > until) throw error;
    }
    await sleep(pause, undefined, signal ? { signal } : {}).catch(() => {});
    pause = Math.min(pause * 2, MAX_PAUSE_MS);
  }
}
