import { randomBytes } from "node:crypto";
import type { Deps } from "../deps.js";
import { isUnavailable } from "../store/store.js";
import {
  type ClaimCursor,
  type Claimed,
  claimDueDeliveries,
  newClaimCursor,
} from "../webhooks/outbox-claims.js";
import { deliver } from "./deliver.js";

/** Where a worker reports what it cannot handle itself. */
export interface WorkerLog {
  info?(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface DeliveryWorker {
  /** Stops claiming and resolves once the attempts in flight are recorded. */
  stop(): Promise<void>;
}

/** A lease outlives the longest attempt by this much, so no attempt ever runs twice at once. */
const LEASE_MARGIN_MS = 30_000;

/**
 * Starts a delivery worker: it claims due deliveries (up to `concurrency` in flight), attempts
 * them and records the outcome. It wakes when this process queues deliveries, and polls for the
 * rest (other processes' deliveries, retries coming due). Several workers and instances share one
 * store safely: claims take a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and a dead worker's
 * lease runs out and is taken over.
 *
 * While the store is unavailable it keeps polling (so it resumes within a poll interval once the
 * store is back, or at once on the change bus's resync), logs the outage once, and holds on to
 * attempts in flight until their outcome can be recorded (see `deliver`).
 */
export function startDeliveryWorker(deps: Deps, log: WorkerLog): DeliveryWorker {
  const { concurrency, pollMs, timeoutMs } = deps.webhooks;
  let running = true;
  let inFlight = 0;
  let storeAway = false;
  const cursor = newClaimCursor();
  const stopping = new AbortController();
  // A nudge that arrives while the loop is busy is remembered, so the next idle() returns at once.
  let nudged = false;
  let wake: (() => void) | undefined;
  const nudge = () => {
    nudged = true;
    wake?.();
  };
  const unsubscribe = deps.store.bus.subscribe((message) => {
    if ("resync" in message || message.changes.deliveries) nudge();
  });
  const idle = async () => {
    if (!nudged) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    nudged = false;
  };

  const loop = async () => {
    while (running) {
      const free = concurrency - inFlight;
      let claimed: Claimed[] = [];
      if (free > 0) {
        try {
          claimed = await claimDue(deps, cursor, free, timeoutMs + LEASE_MARGIN_MS);
          if (storeAway) log.info?.({}, "store is back; webhook delivery resumes");
          storeAway = false;
        } catch (error) {
          if (!isUnavailable(error))
            log.warn({ err: errorFacts(error) }, "claiming webhook deliveries failed; retrying");
          else if (!storeAway) {
            storeAway = true;
            log.warn({ err: errorFacts(error) }, "store unavailable; webhook delivery waits for it");
          }
        }
      }
      for (const c of claimed) {
        inFlight++;
        deliver(deps, c, stopping.signal)
          .catch((error: unknown) =>
            log.error({ err: errorFacts(error), delivery: c.id }, "webhook attempt failed"),
          )
          .finally(() => {
            inFlight--;
            nudge();
          });
      }
      if (claimed.length === 0 || claimed.length < free) await idle();
    }
  };
  const done = loop();

  return {
    async stop() {
      running = false;
      unsubscribe();
      nudge();
      await done;
      // An elapsed-time bound, so measured on the monotonic clock.
      const deadline = performance.now() + timeoutMs + 1000;
      while (inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // Attempts still waiting for the store give up; their leases run out and the deliveries
      // are taken over (an attempt already sent may then be sent again: at least once).
      stopping.abort();
    },
  };
}

/** Claims up to `limit` due deliveries under a new lease. */
function claimDue(deps: Deps, cursor: ClaimCursor, limit: number, leaseMs: number): Promise<Claimed[]> {
  const leaseToken = randomBytes(12).toString("hex");
  const nowMs = deps.clockMs();
  return claimDueDeliveries(deps.store, cursor, { limit, nowMs, leaseMs, leaseToken });
}

const errorFacts = (error: unknown) =>
  error instanceof Error
    ? { message: error.message, code: (error as { code?: string }).code }
    : { message: String(error) };
