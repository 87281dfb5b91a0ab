import { randomBytes } from "node:crypto";
import type { Deps } from "../deps.js";
import { CLAIM_BUCKETS } from "../store/migrations/0008-citus-ready.js";
import { retryUnavailable } from "../store/retry-unavailable.js";
import { isUnavailable } from "../store/store.js";
import { transact } from "../store/transaction.js";
import { resolveTarget } from "../webhooks/endpoint-url.js";
import type { EndpointRef } from "../webhooks/outbox.js";
import {
  type Claimed,
  claimDueDeliveries,
  type DeliveryEvent,
  type EndpointTarget,
  leaseDueDeliveries,
  newClaimCursor,
  type Outcome,
  readDeliveryEvents,
  readEndpointTargets,
  releaseLease,
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
const AHEAD_PER_SLOT = 400;
/** At most this many of one endpoint's deliveries are claimed ahead, per attempt it may run at once. */
const AHEAD_PER_ENDPOINT_SLOT = 128;
/** Rows one look for due deliveries reads: enough to find many endpoints when users have few each. */
const LOOK_LIMIT = 32;
/** Looks one claim makes at most before attempts get their turn (a round of looks may span claims). */
const LOOKS_PER_CLAIM = 8;
/** While it has deliveries in hand, a worker starts a round of looks at most this often. */
const LOOK_INTERVAL_MS = 25;
/**
 * An endpoint's URL, secrets and state are read again once this old (in the background: attempts
 * go on with the copy in hand meanwhile), so a change reaches the worker within about this long…
 */
const ENDPOINT_REFRESH_MS = 100;
/** …and a copy this old is not used at all: its endpoint's deliveries wait for a fresh read. */
const ENDPOINT_STALE_MS = 1000;
/** Endpoints whose attempt latency a worker remembers (to size its claims). */
const LATENCIES_KEPT = 4096;

/** One endpoint's deliveries in this worker: claimed and waiting, and in flight. */
interface Lane {
  ref: EndpointRef;
  waiting: { claimed: Claimed; event: DeliveryEvent }[];
  inFlight: number;
  /** The endpoint as last read (null: it no longer exists), and when (performance.now()). */
  target?: EndpointTarget | null;
  /** Its URL, parsed. */
  url?: URL;
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
  const laneLimit = endpointConcurrency * AHEAD_PER_ENDPOINT_SLOT;
  /** The time a lease leaves to start an attempt in. */
  const window = leaseMs - timeoutMs - LEASE_SAFETY_MS;
  const pool = new ConnectionPool({ keepAliveMs, check: (url) => resolveTarget(deps, url) });
  const stopping = new AbortController();
  const recorder = new OutcomeRecorder(
    deps,
    log,
    scheduleAttempts(deps.webhooks, deps.clockMs),
    stopping.signal,
    () => inFlight === 0,
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
  /**
   * Whether the next claim starts a round of looks for due deliveries (new ones were queued, or
   * a poll is due); otherwise it only tops up the lanes known to have more.
   */
  let lookWanted = true;
  /** How far (in claim buckets) the round of looks in progress has walked, if one is. */
  let walked: number | undefined;
  let lastRoundEnd = Number.NEGATIVE_INFINITY;
  let wake: (() => void) | undefined;
  const nudge = () => {
    nudged = true;
    wake?.();
  };
  const unsubscribe = deps.store.bus.subscribe((message) => {
    if (!("resync" in message) && !message.changes.deliveries) return;
    lookWanted = true;
    nudge();
  });
  const idle = async (waitMs = pollMs) => {
    if (!nudged) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          lookWanted = true;
          resolve();
        }, waitMs);
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
   * yet heard from is assumed to take the whole timeout each time), and no more than its share
   * of what the worker holds, so that every endpoint with deliveries due gets its turn.
   */
  const laneCap = (endpointId: number) => {
    const latency = Math.max(latencies.get(endpointId) ?? timeoutMs, 1);
    const paced = Math.max(1, Math.floor(window / latency)) * endpointConcurrency;
    const share = Math.max(2 * endpointConcurrency, Math.floor(topUpLimit() / Math.max(1, lanes.size)));
    return Math.min(laneLimit, paced, share);
  };
  /**
   * How many deliveries the worker holds at most: AHEAD_PER_SLOT per attempt it runs at once, and
   * no more than `concurrency` attempts get through in a lease's time at its lanes' mean latency
   * (many slow endpoints share the worker's slots). Worked out at most every 50 ms.
   */
  let held = { limit: concurrency * AHEAD_PER_SLOT, at: Number.NEGATIVE_INFINITY };
  const aheadLimit = () => {
    if (performance.now() - held.at < 50) return held.limit;
    let sum = 0;
    for (const lane of lanes.values()) sum += latencies.get(lane.ref.endpointId) ?? timeoutMs;
    const mean = lanes.size === 0 ? 1 : Math.max(1, sum / lanes.size);
    const paced = Math.max(1, Math.floor(window / mean)) * concurrency;
    held = { limit: Math.min(concurrency * AHEAD_PER_SLOT, paced), at: performance.now() };
    return held.limit;
  };
  /** Top-ups leave a quarter of what the worker holds to endpoints it has not seen yet. */
  const topUpLimit = () => Math.floor((aheadLimit() * 3) / 4);
  /** How many more of an endpoint's deliveries may be claimed now. */
  const room = (ref: EndpointRef) => {
    const lane = lanes.get(ref.endpointId);
    return laneCap(ref.endpointId) - (lane ? lane.waiting.length + lane.inFlight : 0);
  };
  /**
   * Whether a lane with more due has run down to `share` of what it may hold. At half, the loop
   * is woken to top it up; every other such lane down to a third is topped up with it, so the
   * lanes of a busy worker are refilled together, in one transaction.
   */
  const runDown = (lane: Lane, share = 1 / 2) =>
    lane.backlog && room(lane.ref) >= Math.ceil(laneCap(lane.ref.endpointId) * share);
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
  const age = (lane: Lane) =>
    lane.target === undefined ? Number.POSITIVE_INFINITY : performance.now() - lane.readAt;

  /** Reads the endpoints of lanes whose copy is due for a refresh, in one statement, then dispatches again. */
  const refresh = () => {
    if (refreshing) return;
    const stale = [...lanes.values()].filter((l) => l.waiting.length > 0 && age(l) > ENDPOINT_REFRESH_MS);
    if (stale.length === 0) return;
    refreshing = true;
    retryUnavailable(
      () =>
        readEndpointTargets(
          deps.store,
          stale.map((l) => l.ref),
        ),
      { signal: stopping.signal, clockMs: deps.clockMs },
    )
      .then((targets) => {
        const at = performance.now();
        for (const lane of stale) {
          const target = targets.get(lane.ref.endpointId) ?? null;
          if (target && target.url !== lane.url?.href) lane.url = new URL(target.url);
          lane.target = target;
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
        if (age(lane) > ENDPOINT_REFRESH_MS) refresh();
        if (age(lane) > ENDPOINT_STALE_MS) continue;
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
    const { target, url } = lane;
    if (deps.clockMs() + timeoutMs + LEASE_SAFETY_MS > claimed.leaseUntilMs || !target || !url) {
      recorder.add({ kind: "release", claimed });
      return;
    }
    if (target.deletedAt !== null || target.disabledAt !== null) {
      recorder.add({ kind: "settle", claimed });
      return;
    }
    inFlight++;
    lane.inFlight++;
    attemptDelivery(deps, pool, target, url, event)
      .then(
        (attempt): Outcome => {
          noteLatency(claimed.endpointId, attempt.latencyMs);
          return { kind: "attempt", claimed, attempt };
        },
        (error: unknown): Outcome => {
          log.error({ err: errorFacts(error), delivery: claimed.id }, "webhook attempt failed");
          return { kind: "release", claimed };
        },
      )
      .then((outcome) => {
        inFlight--;
        lane.inFlight--;
        recorder.add(outcome);
        // Claims come in batches: the loop is woken when a lane has room for half a batch.
        if (runDown(lane)) nudge();
        dropIfIdle(lane);
        dispatch();
      });
  };

  /**
   * Claims a batch: first it tops up the endpoints known to have more due (a lease each, in one
   * transaction, no look needed), then — when new deliveries were queued or a poll is due — looks
   * from the cursor for others, a few looks at most, stopping at the first that leases nothing.
   * Returns whether the looks were cut short (more may be due at once).
   */
  const claim = async (): Promise<{ claimed: number; more: boolean; waitMs?: number }> => {
    await releaseUncertain();
    let claimed = 0;
    const nowMs = deps.clockMs();
    const lease = { nowMs, leaseMs, leaseToken: randomBytes(12).toString("hex") };
    const refills: { endpoint: EndpointRef; take: number }[] = [];
    for (const lane of lanes.values()) {
      const take = room(lane.ref);
      if (runDown(lane, 1 / 3) && take > 0) refills.push({ endpoint: lane.ref, take });
    }
    const left = topUpLimit() - waiting;
    if (refills.length > 0 && left > 0 && running) {
      const endpoints = refills.map((r) => r.endpoint);
      const got = await leasing(lease, endpoints, () =>
        transact(deps.store, (tx) => leaseDueDeliveries(tx, refills, lease, left)),
      );
      claimed += await queue(got.claimed);
      noteBacklogs(got.asked, got.claimed);
    }
    // A round of looks walks every claim bucket once from the cursor, a few looks per claim.
    if (walked === undefined) {
      const since = performance.now() - lastRoundEnd;
      // Deliveries come due without a nudge (retries, other processes): a poll even when busy.
      if (since >= pollMs) lookWanted = true;
      if (!lookWanted) return { claimed, more: false };
      if (lanes.size > 0 && since < LOOK_INTERVAL_MS)
        return { claimed, more: false, waitMs: LOOK_INTERVAL_MS - since };
      lookWanted = false;
      walked = 0;
    }
    // Lanes known to have more are left to the top-ups above.
    const fresh = (ref: EndpointRef) => (lanes.get(ref.endpointId)?.backlog ? 0 : room(ref));
    for (let look = 0; look < LOOKS_PER_CLAIM; look++) {
      const limit = aheadLimit() - waiting;
      // Full: the round waits until attempts make room and wake the loop.
      if (!running || limit <= 0) return { claimed, more: false };
      const from = cursor.bucket;
      // Every endpoint the look offers room to may get rows leased.
      const offered: EndpointRef[] = [];
      const got = await leasing(lease, offered, () =>
        claimDueDeliveries(deps.store, cursor, {
          look: LOOK_LIMIT,
          limit,
          room: (ref) => {
            offered.push(ref);
            return fresh(ref);
          },
          ...lease,
        }),
      );
      claimed += await queue(got.claimed);
      noteBacklogs(got.asked, got.claimed);
      walked +=
        got.found === 0
          ? CLAIM_BUCKETS
          : (cursor.bucket - from + CLAIM_BUCKETS) % CLAIM_BUCKETS || CLAIM_BUCKETS;
      if (walked >= CLAIM_BUCKETS) {
        walked = undefined;
        lastRoundEnd = performance.now();
        return { claimed, more: false };
      }
    }
    return { claimed, more: true };
  };
  /**
   * Claims that failed (a store outage, mostly), and the endpoints each may hold leases of: a claim
   * can commit while its answer is lost (the connection dies during COMMIT), and then the rows it
   * leased would wait for the lease to run out (the attempt timeout and 30 s more) although this
   * worker never got them. Once the store answers again, the next claim first releases them.
   */
  const uncertain: { leaseToken: string; untilMs: number; endpoints: readonly EndpointRef[] }[] = [];
  /** Forgets the uncertain claims whose lease has run out anyway (this bounds the list). */
  const expireUncertain = () => {
    const nowMs = deps.clockMs();
    while ((uncertain[0]?.untilMs ?? Number.POSITIVE_INFINITY) <= nowMs) uncertain.shift();
  };
  const leasing = async <T>(
    lease: { nowMs: number; leaseToken: string },
    endpoints: readonly EndpointRef[],
    run: () => Promise<T>,
  ): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      expireUncertain();
      const untilMs = lease.nowMs + leaseMs;
      if (endpoints.length > 0) uncertain.push({ leaseToken: lease.leaseToken, untilMs, endpoints });
      throw error;
    }
  };
  const releaseUncertain = async () => {
    expireUncertain();
    for (let first = uncertain[0]; first; first = uncertain[0]) {
      const { leaseToken, endpoints } = first;
      await transact(deps.store, (tx) => releaseLease(tx, leaseToken, endpoints));
      uncertain.shift();
    }
  };

  /** An endpoint that gave all that was asked of it probably has more due: its lane is topped up directly. */
  const noteBacklogs = (
    asked: readonly { endpoint: EndpointRef; take: number }[],
    got: readonly Claimed[],
  ) => {
    const counts = new Map<number, number>();
    for (const c of got) counts.set(c.endpointId, (counts.get(c.endpointId) ?? 0) + 1);
    for (const { endpoint, take } of asked) {
      const lane = lanes.get(endpoint.endpointId);
      if (!lane) continue;
      lane.backlog = counts.get(endpoint.endpointId) === take;
      dropIfIdle(lane);
    }
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
            deps.store,
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
      let waitMs: number | undefined;
      if (waiting < aheadLimit()) {
        try {
          ({ more, waitMs } = await claim());
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
      if (!more) await idle(waitMs);
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
