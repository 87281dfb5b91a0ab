import { anyOf } from "../store/any-of.js";
import { amongIds, forUpdate } from "../store/for-update.js";
import { bulkColumns, insertMany } from "../store/insert-many.js";
import { CLAIM_BUCKETS } from "../store/migrations/0008-citus-ready.js";
import type { DeliveryStatus, ErrorClass, EventRow, WebhookAttemptsTable } from "../store/schema.js";
import type { Executor, Store } from "../store/store.js";
import { type Tx, transact } from "../store/transaction.js";
import { updateMany } from "../store/update-many.js";
import { markEndpointFailing, markEndpointHealthy } from "./endpoint-health.js";
import {
  adjustDeliveryCounts,
  type CountDelta,
  type EndpointRef,
  holdDeliveries,
  lockEndpoints,
} from "./outbox.js";

/**
 * The worker's side of the outbox: claiming due deliveries under a lease, reading what to send,
 * and recording what came of them. Like outbox.ts, the only writer of delivery rows; every
 * transition keeps the per-status counts exact.
 */

/** A delivery a worker holds the lease of. */
export interface Claimed {
  id: number;
  /** The delivery's user: every later statement about it names the user (one shard on Citus). */
  userId: number;
  endpointId: number;
  eventId: number;
  leaseToken: string;
  /** When the lease runs out (epoch ms) and another worker may take the delivery over. */
  leaseUntilMs: number;
}

/** Where a worker's next claim starts: the claim bucket after the last one it took from. */
export interface ClaimCursor {
  bucket: number;
}

/** A cursor at a random bucket, so workers start spread over the queue. */
export const newClaimCursor = (): ClaimCursor => ({ bucket: Math.floor(Math.random() * CLAIM_BUCKETS) });

export interface ClaimRequest {
  /** How many due deliveries the look reads (to find endpoints; it leases none of them itself). */
  look: number;
  /** At most this many deliveries in all. */
  limit: number;
  /** How many more of one endpoint's deliveries the claimer will take now (it may be 0). */
  room(endpoint: EndpointRef): number;
  nowMs: number;
  leaseMs: number;
  leaseToken: string;
}

export interface ClaimResult {
  claimed: Claimed[];
  /** Due deliveries the look found; 0 means nothing is due anywhere the cursor looked. */
  found: number;
  /** How many of each endpoint's deliveries were asked for: one that gave them all may have more. */
  asked: { endpoint: EndpointRef; take: number }[];
}

/**
 * Claims due deliveries (pending or failed, due by `nowMs`, with no live lease) under one new
 * lease, walking the claim buckets from the cursor's (soonest due first within a bucket) and
 * moving the cursor past the last bucket it looked at.
 *
 * First a plain read finds whose deliveries are due, reading up to `look` of them; then, for each
 * endpoint found, one statement leases up to `room(endpoint)` of its due deliveries, soonest due
 * first — filtered by user, so on Citus it runs on that user's shard alone (Citus cannot lock
 * rows across shards) — with `FOR UPDATE SKIP LOCKED` on PostgreSQL: concurrent claimers skip
 * each other's rows, so no delivery is claimed twice. The found rows only name the endpoints; a
 * lease statement may take more of an endpoint's deliveries than the read happened to see.
 */
export async function claimDueDeliveries(
  store: Store,
  cursor: ClaimCursor,
  { look, limit, room, nowMs, leaseMs, leaseToken }: ClaimRequest,
): Promise<ClaimResult> {
  const due = (db: Executor) => dueDeliveries(db, nowMs);
  const from = cursor.bucket;
  const found = await due(store.db)
    .select(["user_id", "endpoint_id", "bucket"])
    .where("bucket", ">=", from)
    .orderBy("bucket")
    .orderBy("next_attempt_at_ms")
    .limit(look)
    .execute();
  if (found.length < look && from > 0) {
    const wrapped = await due(store.db)
      .select(["user_id", "endpoint_id", "bucket"])
      .where("bucket", "<", from)
      .orderBy("bucket")
      .orderBy("next_attempt_at_ms")
      .limit(look - found.length)
      .execute();
    found.push(...wrapped);
  }
  const last = found.at(-1);
  cursor.bucket = last === undefined ? from : (last.bucket + 1) % CLAIM_BUCKETS;
  const endpoints = new Map<number, EndpointRef>();
  for (const r of found) endpoints.set(r.endpoint_id, { userId: r.user_id, endpointId: r.endpoint_id });

  const wanted: { endpoint: EndpointRef; take: number }[] = [];
  for (const endpoint of endpoints.values()) {
    const take = room(endpoint);
    if (take > 0) wanted.push({ endpoint, take });
  }
  if (wanted.length === 0) return { claimed: [], found: found.length, asked: [] };
  const { claimed, asked } = await transact(store, (tx) =>
    leaseDueDeliveries(tx, wanted, { nowMs, leaseMs, leaseToken }, limit),
  );
  return { claimed, found: found.length, asked };
}

/**
 * Frees what a lease may hold of each endpoint's deliveries, in the caller's transaction: for a
 * claim whose outcome is unknown (the store failed while it committed), which its claimer never
 * got the rows of. They are due again at once rather than when the lease runs out. The token is
 * the claim's own, so nothing another claim holds is touched. One statement per endpoint,
 * filtered by user (one shard on Citus); the status, and so the counts, are unchanged.
 */
export async function releaseLease(
  tx: Tx,
  leaseToken: string,
  endpoints: readonly EndpointRef[],
): Promise<void> {
  for (const { userId, endpointId } of endpoints) {
    await tx.trx
      .updateTable("webhook_deliveries")
      .set({ lease_token: null, lease_until_ms: null })
      .where("user_id", "=", userId)
      .where("endpoint_id", "=", endpointId)
      .where("lease_token", "=", leaseToken)
      .execute();
  }
}

/**
 * Leases up to `take` of each endpoint's due deliveries, soonest due first, and at most `limit`
 * in all, in the caller's transaction: one statement per endpoint, filtered by user (one shard
 * on Citus), with `FOR UPDATE SKIP LOCKED` on PostgreSQL so that concurrent claimers skip each
 * other's rows. A claimer that knows an endpoint has more due (it got all it asked for last
 * time) tops it up this way without looking first. Returns the leased deliveries and how many of
 * each endpoint's were asked for (one that gave them all may have more).
 */
export async function leaseDueDeliveries(
  tx: Tx,
  wanted: readonly { endpoint: EndpointRef; take: number }[],
  { nowMs, leaseMs, leaseToken }: { nowMs: number; leaseMs: number; leaseToken: string },
  limit = Number.POSITIVE_INFINITY,
): Promise<{ claimed: Claimed[]; asked: { endpoint: EndpointRef; take: number }[] }> {
  const leaseUntilMs = nowMs + leaseMs;
  const claimed: Claimed[] = [];
  const asked: { endpoint: EndpointRef; take: number }[] = [];
  for (const wish of wanted) {
    const take = Math.min(wish.take, limit - claimed.length);
    if (take <= 0) break;
    asked.push({ endpoint: wish.endpoint, take });
    const { userId, endpointId } = wish.endpoint;
    const rows = await tx.trx
      .updateTable("webhook_deliveries")
      .set({ lease_token: leaseToken, lease_until_ms: leaseUntilMs })
      // The endpoint too, so that SQLite finds the rows by the (user, endpoint, id) index rather
      // than scanning the user's.
      .where("user_id", "=", userId)
      .where("endpoint_id", "=", endpointId)
      .where(() =>
        amongIds(
          tx,
          "id",
          forUpdate(
            tx,
            dueDeliveries(tx.trx, nowMs)
              .select("id")
              .where("user_id", "=", userId)
              .where("endpoint_id", "=", endpointId)
              .orderBy("next_attempt_at_ms")
              .limit(take),
            { skipLocked: true },
          ),
        ),
      )
      .returning(["id", "event_id"])
      .execute();
    rows.sort((a, b) => a.id - b.id);
    for (const r of rows)
      claimed.push({ id: r.id, userId, endpointId, eventId: r.event_id, leaseToken, leaseUntilMs });
  }
  return { claimed, asked };
}

/** Deliveries due by `nowMs` (pending or failed) that no live lease holds. */
const dueDeliveries = (db: Executor, nowMs: number) =>
  db
    .selectFrom("webhook_deliveries")
    .where("status", "in", ["pending", "failed"])
    .where("next_attempt_at_ms", "<=", nowMs)
    .where((eb) => eb.or([eb("lease_until_ms", "is", null), eb("lease_until_ms", "<", nowMs)]));

/** The fields of an event a delivery's payload is made of. */
export type DeliveryEvent = Pick<EventRow, "public_id" | "type" | "occurred_at" | "data" | "overrides">;

/**
 * The events of claimed deliveries, by id, in one statement (events live apart from users' rows
 * on Citus, so they are read by id on their own).
 */
export async function readDeliveryEvents(
  store: Store,
  eventIds: readonly number[],
): Promise<Map<number, DeliveryEvent>> {
  if (eventIds.length === 0) return new Map();
  const rows = await store.db
    .selectFrom("events")
    .select(["id", "public_id", "type", "occurred_at", "data", "overrides"])
    .where(() => anyOf(store.dialect, "id", [...new Set(eventIds)]))
    .execute();
  return new Map(rows.map(({ id, ...event }) => [id, event]));
}

/** What sending to an endpoint needs: its URL and secrets, and whether it still takes deliveries. */
export interface EndpointTarget {
  url: string;
  secret: string;
  previousSecret: string | null;
  previousSecretUntil: number | null;
  disabledAt: number | null;
  deletedAt: number | null;
}

/** Endpoints as they are now, by endpoint id, in one statement. */
export async function readEndpointTargets(
  store: Store,
  endpoints: readonly EndpointRef[],
): Promise<Map<number, EndpointTarget>> {
  if (endpoints.length === 0) return new Map();
  const rows = await store.db
    .selectFrom("webhook_endpoints")
    .select(["id", "url", "secret", "previous_secret", "previous_secret_until", "disabled_at", "deleted_at"])
    .where(() => anyOf(store.dialect, "user_id", [...new Set(endpoints.map((e) => e.userId))]))
    .where(() =>
      anyOf(
        store.dialect,
        "id",
        endpoints.map((e) => e.endpointId),
      ),
    )
    .execute();
  return new Map(
    rows.map((r) => [
      r.id,
      {
        url: r.url,
        secret: r.secret,
        previousSecret: r.previous_secret,
        previousSecretUntil: r.previous_secret_until,
        disabledAt: r.disabled_at,
        deletedAt: r.deleted_at,
      },
    ]),
  );
}

/** One attempt's record: what was sent when, and what came back. */
export interface AttemptRecord {
  attemptedAt: number;
  status: number | null;
  body: string | null;
  latencyMs: number;
  errorClass: ErrorClass | null;
  /** The response's Retry-After header, if any (not stored; the schedule reads it). */
  retryAfter?: string;
}

/** What became of a claimed delivery. */
export type Outcome =
  /** It was attempted. */
  | { kind: "attempt"; claimed: Claimed; attempt: AttemptRecord }
  /** Its endpoint was found deleted or disabled: cancelled or held without an attempt. */
  | { kind: "settle"; claimed: Claimed }
  /** It was not attempted (too little lease left, the worker stopping): back to the queue as it was. */
  | { kind: "release"; claimed: Claimed };

/** Where an attempt leaves its delivery, and its endpoint's failure streak. */
export interface AttemptPlan {
  to: DeliveryStatus;
  scheduleStep: number;
  nextAttemptAtMs: number | null;
  /** When the endpoint's current run of failures began; null after a success. */
  failingSince: number | null;
  /** The endpoint is to be disabled for this reason, its queued deliveries held. */
  disable?: "gone" | "failing";
}

/**
 * The caller's schedule: where an attempt leaves a delivery that has made `scheduleStep`
 * attempts of its schedule, on an endpoint failing since `failingSince` (or not failing).
 */
export type PlanAttempt = (input: {
  attempt: AttemptRecord;
  scheduleStep: number;
  failingSince: number | null;
  now: number;
}) => AttemptPlan;

/** An endpoint locked for recording, with what this batch changes about it. */
interface EndpointState {
  ref: EndpointRef;
  failingSince: number | null;
  disabledAt: number | null;
  deletedAt: number | null;
  was: { failingSince: number | null; disabledAt: number | null };
  /** Why this batch disables it, if it does. */
  disable?: "gone" | "failing";
}

const ATTEMPT_COLUMNS = bulkColumns<AttemptRow>({
  bigint: ["user_id", "delivery_id", "attempted_at"],
  integer: ["number", "response_status", "latency_ms"],
  text: ["response_body", "error_class"],
});

type AttemptRow = Omit<WebhookAttemptsTable, "id">;

interface DeliveryMove {
  user_id: number;
  id: number;
  lease_token: string;
  status: DeliveryStatus;
  schedule_step: number;
  next_attempt_at_ms: number | null;
  updated_at: number;
}

const MOVE_KEY = bulkColumns<DeliveryMove>({ bigint: ["user_id", "id"], text: ["lease_token"] });
const MOVE_VALUES = bulkColumns<DeliveryMove>({
  bigint: ["next_attempt_at_ms", "updated_at"],
  integer: ["schedule_step"],
  text: ["status"],
});

/**
 * Records many outcomes in the caller's transaction, in a few statements whatever their number:
 * every attempt is logged (numbered after the delivery's earlier ones), and each delivery still
 * under its claimer's lease moves on — as `plan` says after an attempt; cancelled or held when
 * its endpoint is (now) deleted or disabled; back to the queue unchanged when released — with its
 * lease cleared and the per-status counts kept exact. An endpoint's failure streak follows its
 * attempts in order; one that `plan` disables is disabled and its queued deliveries held, and
 * this batch's later outcomes for it leave their deliveries held.
 *
 * A delivery whose lease was lost meanwhile (the endpoint was disabled or deleted, the delivery
 * redelivered, or the lease ran out and another worker took it) keeps where that put it; its
 * attempt is still logged.
 *
 * Locks: the endpoints first, one statement each in ascending id order — the order every writer
 * of several endpoints follows, and each a single shard on Citus — then the deliveries are read
 * and written only under them, each update conditional on the claimer's lease token.
 */
export async function recordOutcomes(
  tx: Tx,
  outcomes: readonly Outcome[],
  plan: PlanAttempt,
  now: number,
): Promise<void> {
  if (outcomes.length === 0) return;
  const refs = new Map<number, EndpointRef>();
  for (const { claimed } of outcomes)
    refs.set(claimed.endpointId, { userId: claimed.userId, endpointId: claimed.endpointId });
  const locked = await lockEndpoints(tx, [...refs.values()]);
  const endpoints = new Map<number, EndpointState>();
  for (const row of locked) {
    const ref = refs.get(row.id);
    if (!ref) continue;
    endpoints.set(row.id, {
      ref,
      failingSince: row.failing_since,
      disabledAt: row.disabled_at,
      deletedAt: row.deleted_at,
      was: { failingSince: row.failing_since, disabledAt: row.disabled_at },
    });
  }

  const ids = [...new Set(outcomes.map((o) => o.claimed.id))];
  const users = [...new Set(outcomes.map((o) => o.claimed.userId))];
  const rows = await tx.trx
    .selectFrom("webhook_deliveries as d")
    .select(["d.id", "d.status", "d.schedule_step", "d.next_attempt_at_ms", "d.lease_token"])
    .select((eb) =>
      eb
        .selectFrom("webhook_attempts as a")
        .select((inner) => inner.fn.max("a.number").as("n"))
        .whereRef("a.user_id", "=", "d.user_id")
        .whereRef("a.delivery_id", "=", "d.id")
        .as("attempts"),
    )
    .where(() => anyOf(tx.dialect, "d.user_id", users))
    .where(() => anyOf(tx.dialect, "d.id", ids))
    .execute();
  const deliveries = new Map(rows.map((r) => [r.id, { ...r, attempts: Number(r.attempts ?? 0) }]));

  const attempts: AttemptRow[] = [];
  const moves: DeliveryMove[] = [];
  const transitions: { ref: EndpointRef; from: DeliveryStatus; to: DeliveryStatus }[] = [];
  for (const outcome of outcomes) {
    const { claimed } = outcome;
    const d = deliveries.get(claimed.id);
    if (outcome.kind === "attempt" && d) {
      const { attempt } = outcome;
      d.attempts++;
      attempts.push({
        user_id: claimed.userId,
        delivery_id: claimed.id,
        number: d.attempts,
        attempted_at: attempt.attemptedAt,
        response_status: attempt.status,
        response_body: attempt.body,
        latency_ms: attempt.latencyMs,
        error_class: attempt.errorClass,
      });
    }
    const e = endpoints.get(claimed.endpointId);
    // An endpoint this batch disables holds the rest of its deliveries, as a hold would have.
    if (!d || !e || d.lease_token !== claimed.leaseToken || e.disable) continue;
    d.lease_token = null;
    let move: Pick<DeliveryMove, "status" | "schedule_step" | "next_attempt_at_ms">;
    if (outcome.kind === "attempt") {
      const p = plan({
        attempt: outcome.attempt,
        scheduleStep: d.schedule_step,
        failingSince: e.failingSince,
        now,
      });
      e.failingSince = p.failingSince;
      if (p.disable) {
        e.disable = p.disable;
        e.disabledAt ??= now;
      }
      move = { status: p.to, schedule_step: p.scheduleStep, next_attempt_at_ms: p.nextAttemptAtMs };
    } else if (outcome.kind === "settle" && (e.deletedAt !== null || e.disabledAt !== null)) {
      const to = e.deletedAt !== null ? "cancelled" : "held";
      move = { status: to, schedule_step: d.schedule_step, next_attempt_at_ms: null };
    } else {
      // Released, or settled for an endpoint that takes deliveries again: due as it was.
      move = { status: d.status, schedule_step: d.schedule_step, next_attempt_at_ms: d.next_attempt_at_ms };
    }
    moves.push({
      user_id: claimed.userId,
      id: claimed.id,
      lease_token: claimed.leaseToken,
      updated_at: now,
      ...move,
    });
    transitions.push({ ref: e.ref, from: d.status, to: move.status });
  }

  await insertMany(tx, { table: "webhook_attempts", columns: ATTEMPT_COLUMNS, rows: attempts });
  const moved = await updateMany(tx, {
    table: "webhook_deliveries",
    match: MOVE_KEY,
    set: MOVE_VALUES,
    clear: ["lease_token", "lease_until_ms"],
    rows: moves,
  });
  const deltas: CountDelta[] = [];
  transitions.forEach(({ ref, from, to }, i) => {
    if (!moved[i] || from === to) return;
    deltas.push({ ...ref, status: from, delta: -1 }, { ...ref, status: to, delta: 1 });
  });
  await adjustDeliveryCounts(tx, deltas);

  for (const e of endpoints.values()) {
    if (e.failingSince === null) {
      if (e.was.failingSince !== null) await markEndpointHealthy(tx, e.ref);
    } else if (e.failingSince !== e.was.failingSince || e.disable) {
      await markEndpointFailing(tx, e.ref, {
        failingSince: e.failingSince,
        ...(e.disable && { disable: e.disable }),
        alreadyDisabled: e.was.disabledAt !== null,
        now,
      });
    }
    if (e.disable) await holdDeliveries(tx, e.ref, now);
  }
}
