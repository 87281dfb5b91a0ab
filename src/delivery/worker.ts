import { randomBytes } from "node:crypto";
import type { Deps } from "../deps.js";
import { retryUnavailable } from "../store/retry-unavailable.js";
import { isUnavailable } from "../store/store.js";
import { resolveTarget } from "../webhooks/endpoint-url.js";
import type { EndpointRef } from "../webhooks/outbox.js";
import {
  type Claimed,
  claimDueDeliveries,
  type DeliveryEvent,
  type EndpointTarget,
  leaseDueDeliveries,
  newClaimCursor,
  readDeliveryEvents,
  readEndpointTargets,
} from "../webhooks/outbox-claims.js";
import { ConnectionPool } from "./connection-pool.js";
import { attemptDelivery, scheduleAttempts } from "./deliver.js";
import { OutcomeRecorder } from "./recorder.js";
import { errorFacts, type WorkerLog } from "./worker-log.js";

export type { WorkerLog } from "./worker-log.js";

export interface DeliveryWorker {
  /** Stops claiming and resolves once the attempts in flight are recorded. */
  stop(): Promise<void>;
}

/** A lease outlives the longest attempt by this much, so no attempt ever runs twice at once. */
const LEASE_MARGIN_MS = 30_000;
/** An attempt starts only if it can end this long before its lease does. */
const LEASE_SAFETY_MS = 1000;
/** Deliveries a worker holds claimed ahead of its attempts, per attempt it runs at once. */
const AHEAD_PER_SLOT = 50;
/** At most this many of one endpoint's deliveries are claimed ahead, per attempt it may run at once. */
const AHEAD_PER_ENDPOINT_SLOT = 16;
/** Rows one look for due deliveries reads: enough to find many endpoints when users have few each. */
const LOOK_LIMIT = 100;
/** Looks (and their leases) one claim makes at most before attempts get their turn. */
const CLAIM_ROUNDS = 8;
/** An endpoint's URL, secrets and state, once read, are used for this long before being read again. */
const ENDPOINT_FRESH_MS = 100;
/** Endpoints whose attempt latency a worker remembers (to size its claims). */
const LATENCIES_KEPT = 4096;

/** One endpoint's deliveries in this worker: claimed and waiting, and in flight. */
interface Lane {
  ref: EndpointRef;
  waiting: { claimed: Claimed; event: DeliveryEvent }[];
  inFlight: number;
  /** The endpoint as last read (null: it no longer exists), and when (performance.now()). */
  target?: EndpointTarget | null;
  readAt: number;
  /** Its last lease took all it asked for: more are probably due, to be topped up directly. */
  backlog: boolean;
}

/**
 * Starts a delivery worker. It claims due deliveries in batches ahead of its attempts, runs up
 * to `concurrency` attempts at once and at most `endpointConcurrency` to any one endpoint, over
 * keep-alive connections pooled per origin, and records what came of them in batches. It wakes
 * when this process queues deliveries, and polls for the rest (other processes' deliveries,
 * retries coming due). Several workers and instances share one store safely: claims take a lease
 * (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and a dead worker's lease runs out and is taken over.
 *
 * A worker claims no more of an endpoint's deliveries than it can start before their lease runs
 * out at the pace that endpoint answers, and one that has too little lease left when its turn
 * comes goes back to the queue unattempted.
 *
 * While the store is unavailable it keeps polling (so it resumes within a poll interval once the
 * store is back, or at once on the change bus's resync), logs the outage once, and holds on to
 * outcomes until they can be recorded (see OutcomeRecorder).
 */
export function startDeliveryWorker(deps: Deps, log: WorkerLog): DeliveryWorker {
  const { concurrency, endpointConcurrency, keepAliveMs, pollMs, timeoutMs } = deps.webhooks;
  const leaseMs = timeoutMs + LEASE_MARGIN_MS;
  const aheadLimit = concurrency * AHEAD_PER_SLOT;
  const laneLimit = endpointConcurrency * AHEAD_PER_ENDPOINT_SLOT;
  const pool = new ConnectionPool({ keepAliveMs, check: (url) => resolveTarget(deps, url) });
  const stopping = new AbortController();
  const recorder = new OutcomeRecorder(
    deps,
    log,
    scheduleAttempts(deps.webhooks, deps.clockMs),
    stopping.signal,
  );
  const lanes = new Map<number, Lane>();
  /** Recent attempt latency per endpoint (ms): how fast it gets through what is claimed for it. */
  const latencies = new Map<number, number>();
  const cursor = newClaimCursor();
  let running = true;
  let waiting = 0;
  let inFlight = 0;
  let storeAway = false;
  let refreshing = false;

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

  /**
   * How many of an endpoint's deliveries this worker holds at most: as many as it gets through,
   * at `endpointConcurrency` at once, in the time a lease leaves to start them (an endpoint not
   * yet heard from is assumed to take the whole timeout each time).
   */
  const laneCap = (endpointId: number) => {
    const latency = Math.max(latencies.get(endpointId) ?? timeoutMs, 1);
    const window = leaseMs - timeoutMs - LEASE_SAFETY_MS;
    return Math.min(laneLimit, Math.max(1, Math.floor(window / latency)) * endpointConcurrency);
  };
  /** How many more of an endpoint's deliveries may be claimed now. */
  const room = (ref: EndpointRef) => {
    const lane = lanes.get(ref.endpointId);
    return laneCap(ref.endpointId) - (lane ? lane.waiting.length + lane.inFlight : 0);
  };
  /** Whether a lane with more due has run down to half of what it may hold: time to top it up. */
  const runDown = (lane: Lane) =>
    lane.backlog && room(lane.ref) >= Math.ceil(laneCap(lane.ref.endpointId) / 2);
  const noteLatency = (endpointId: number, ms: number) => {
    const before = latencies.get(endpointId);
    latencies.delete(endpointId);
    // Up at once when an endpoint slows down, down gradually when it speeds up.
    latencies.set(endpointId, before === undefined ? ms : Math.max(ms, before * 0.8 + ms * 0.2));
    if (latencies.size > LATENCIES_KEPT) latencies.delete(latencies.keys().next().value as number);
  };

  const laneOf = (claimed: Claimed) => {
    let lane = lanes.get(claimed.endpointId);
    if (!lane) {
      lane = {
        ref: { userId: claimed.userId, endpointId: claimed.endpointId },
        waiting: [],
        inFlight: 0,
        readAt: 0,
        backlog: false,
      };
      lanes.set(claimed.endpointId, lane);
    }
    return lane;
  };
  const dropIfIdle = (lane: Lane) => {
    if (lane.waiting.length === 0 && lane.inFlight === 0 && !lane.backlog) lanes.delete(lane.ref.endpointId);
  };
  const fresh = (lane: Lane) =>
    lane.target !== undefined && performance.now() - lane.readAt <= ENDPOINT_FRESH_MS;

  /** Reads the endpoints of lanes whose copy is stale, in one statement, then dispatches again. */
  const refresh = () => {
    if (refreshing) return;
    const stale = [...lanes.values()].filter((l) => l.waiting.length > 0 && !fresh(l));
    if (stale.length === 0) return;
    refreshing = true;
    retryUnavailable(
      () =>
        readEndpointTargets(
          deps.store.db,
          stale.map((l) => l.ref),
        ),
      { signal: stopping.signal, clockMs: deps.clockMs },
    )
      .then((targets) => {
        const at = performance.now();
        for (const lane of stale) {
          lane.target = targets.get(lane.ref.endpointId) ?? null;
          lane.readAt = at;
        }
      })
      .catch((error: unknown) => {
        if (!stopping.signal.aborted)
          log.error({ err: errorFacts(error) }, "reading webhook endpoints failed; their deliveries wait");
      })
      .finally(() => {
        refreshing = false;
        dispatch();
      });
  };

  /** Starts (or settles) what may start now, taking turns between endpoints. */
  const dispatch = () => {
    if (!running) return;
    let started = true;
    while (started && inFlight < concurrency) {
      started = false;
      for (const lane of [...lanes.values()]) {
        if (inFlight >= concurrency) break;
        if (lane.waiting.length === 0 || lane.inFlight >= endpointConcurrency) continue;
        if (!fresh(lane)) {
          refresh();
          continue;
        }
        const next = lane.waiting.shift();
        if (!next) continue;
        waiting--;
        start(lane, next.claimed, next.event);
        started = true;
        // To the back of the line: the next turn is another endpoint's.
        lanes.delete(lane.ref.endpointId);
        lanes.set(lane.ref.endpointId, lane);
        dropIfIdle(lane);
      }
    }
  };

  const start = (lane: Lane, claimed: Claimed, event: DeliveryEvent) => {
    const target = lane.target;
    if (deps.clockMs() + timeoutMs + LEASE_SAFETY_MS > claimed.leaseUntilMs || !target) {
      recorder.add({ kind: "release", claimed });
      return;
    }
    if (target.deletedAt !== null || target.disabledAt !== null) {
      recorder.add({ kind: "settle", claimed });
      return;
    }
    inFlight++;
    lane.inFlight++;
    attemptDelivery(deps, pool, target, event)
      .then((attempt) => {
        noteLatency(claimed.endpointId, attempt.latencyMs);
        recorder.add({ kind: "attempt", claimed, attempt });
      })
      .catch((error: unknown) => {
        log.error({ err: errorFacts(error), delivery: claimed.id }, "webhook attempt failed");
        recorder.add({ kind: "release", claimed });
      })
      .finally(() => {
        inFlight--;
        lane.inFlight--;
        // Claims come in batches: the loop is woken when a lane has room for half a batch.
        if (runDown(lane)) nudge();
        dropIfIdle(lane);
        dispatch();
      });
  };

  /**
   * Claims a batch: first it tops up the endpoints known to have more due (a lease each, no look
   * needed), then looks from the cursor for others, a few looks at most, stopping at the first
   * that leases nothing. Returns whether the looks were cut short (more may be due at once).
   */
  const claim = async (): Promise<{ claimed: number; more: boolean }> => {
    let claimed = 0;
    const nowMs = deps.clockMs();
    const lease = { nowMs, leaseMs, leaseToken: randomBytes(12).toString("hex") };
    for (const lane of [...lanes.values()]) {
      const take = Math.min(room(lane.ref), aheadLimit - waiting);
      if (!running || !runDown(lane) || take <= 0) continue;
      const got = await leaseDueDeliveries(deps.store, lane.ref, { take, ...lease });
      lane.backlog = got.length === take;
      claimed += await queue(got);
      dropIfIdle(lane);
    }
    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      const want = aheadLimit - waiting;
      if (!running || want <= 0) return { claimed, more: false };
      const got = await claimDueDeliveries(deps.store, cursor, {
        limit: Math.min(want, LOOK_LIMIT),
        room,
        ...lease,
      });
      if (got.claimed.length === 0) return { claimed, more: false };
      claimed += await queue(got.claimed);
      for (const c of got.claimed) {
        const lane = lanes.get(c.endpointId);
        if (lane) lane.backlog = room(lane.ref) <= 0;
      }
    }
    return { claimed, more: true };
  };

  /** Reads the claimed deliveries' events and queues them; what cannot be read goes back. */
  const queue = async (claimed: Claimed[]): Promise<number> => {
    if (claimed.length === 0) return 0;
    const readBy = Math.min(...claimed.map((c) => c.leaseUntilMs)) - timeoutMs - LEASE_SAFETY_MS;
    let events: Map<number, DeliveryEvent>;
    try {
      events = await retryUnavailable(
        () =>
          readDeliveryEvents(
            deps.store.db,
            claimed.map((c) => c.eventId),
          ),
        { until: readBy, signal: stopping.signal, clockMs: deps.clockMs },
      );
    } catch (error) {
      for (const c of claimed) recorder.add({ kind: "release", claimed: c });
      throw error;
    }
    for (const c of claimed) {
      const event = events.get(c.eventId);
      if (!event) {
        log.warn({ delivery: c.id, event: c.eventId }, "webhook delivery's event is missing");
        continue;
      }
      laneOf(c).waiting.push({ claimed: c, event });
      waiting++;
    }
    dispatch();
    return claimed.length;
  };

  const loop = async () => {
    while (running) {
      let more = false;
      if (waiting < aheadLimit) {
        try {
          more = (await claim()).more;
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
      dispatch();
      if (!more) await idle();
    }
  };
  const done = loop();

  return {
    async stop() {
      running = false;
      unsubscribe();
      nudge();
      await done;
      // What was claimed but not started goes back to the queue at once.
      for (const lane of lanes.values()) {
        for (const { claimed } of lane.waiting.splice(0)) recorder.add({ kind: "release", claimed });
      }
      waiting = 0;
      // An elapsed-time bound, so measured on the monotonic clock.
      const deadline = performance.now() + timeoutMs + 1000;
      while ((inFlight > 0 || recorder.busy) && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      // Outcomes still waiting for the store give up; their leases run out and the deliveries
      // are taken over (an attempt already sent may then be sent again: at least once).
      stopping.abort();
      await recorder.settled();
      pool.close();
    },
  };
}
