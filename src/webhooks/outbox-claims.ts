import { forUpdate } from "../store/for-update.js";
import { CLAIM_BUCKETS } from "../store/migrations/0008-citus-ready.js";
import type { DeliveryStatus, ErrorClass } from "../store/schema.js";
import type { Executor, Store } from "../store/store.js";
import { type Tx, transact } from "../store/transaction.js";
import { adjustDeliveryCount } from "./outbox.js";

/**
 * The worker's side of the outbox: claiming due deliveries under a lease, reading what to send,
 * and recording each attempt and where it leaves the delivery. Like outbox.ts, the only writer
 * of delivery rows; every transition keeps the per-status counts exact.
 */

/** A delivery a worker holds the lease of. */
export interface Claimed {
  id: number;
  /** The delivery's user: every later statement about it names the user (one shard on Citus). */
  userId: number;
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

/**
 * Claims up to `limit` due deliveries (pending or failed, due by `nowMs`, with no live lease)
 * under one new lease, walking the claim buckets from the cursor's (soonest due first within a
 * bucket) and moving the cursor past the last bucket it took from.
 *
 * First a plain read finds whose deliveries are due; then each user's are leased by a statement
 * of their own, filtered by user (`FOR UPDATE SKIP LOCKED` on PostgreSQL), which on Citus runs on
 * that user's shard alone — Citus cannot lock rows across shards. Concurrent claimers skip each
 * other's rows, so no delivery is claimed twice, and workers at different buckets rarely meet.
 */
export async function claimDueDeliveries(
  store: Store,
  cursor: ClaimCursor,
  {
    limit,
    nowMs,
    leaseMs,
    leaseToken,
  }: { limit: number; nowMs: number; leaseMs: number; leaseToken: string },
): Promise<Claimed[]> {
  const due = (db: Executor) =>
    db
      .selectFrom("webhook_deliveries")
      .where("status", "in", ["pending", "failed"])
      .where("next_attempt_at_ms", "<=", nowMs)
      .where((eb) => eb.or([eb("lease_until_ms", "is", null), eb("lease_until_ms", "<", nowMs)]));
  const from = cursor.bucket;
  const found = await due(store.db)
    .select(["user_id", "bucket"])
    .where("bucket", ">=", from)
    .orderBy("bucket")
    .orderBy("next_attempt_at_ms")
    .limit(limit)
    .execute();
  if (found.length < limit && from > 0) {
    const wrapped = await due(store.db)
      .select(["user_id", "bucket"])
      .where("bucket", "<", from)
      .orderBy("bucket")
      .orderBy("next_attempt_at_ms")
      .limit(limit - found.length)
      .execute();
    found.push(...wrapped);
  }
  const last = found.at(-1);
  cursor.bucket = last === undefined ? from : (last.bucket + 1) % CLAIM_BUCKETS;
  const leaseUntilMs = nowMs + leaseMs;
  const claimed: Claimed[] = [];
  for (const userId of new Set(found.map((r) => r.user_id))) {
    const room = limit - claimed.length;
    if (room <= 0) break;
    const rows = await transact(store, (tx) =>
      tx.trx
        .updateTable("webhook_deliveries")
        .set({ lease_token: leaseToken, lease_until_ms: leaseUntilMs })
        .where("user_id", "=", userId)
        .where(
          "id",
          "in",
          forUpdate(
            tx,
            due(tx.trx).select("id").where("user_id", "=", userId).orderBy("next_attempt_at_ms").limit(room),
            { skipLocked: true },
          ),
        )
        .returning("id")
        .execute(),
    );
    for (const r of rows) claimed.push({ id: r.id, userId, leaseToken, leaseUntilMs });
  }
  return claimed;
}

/** What an attempt of a delivery needs: its endpoint (URL, secrets, state) and its event. */
export async function readDeliveryTarget(db: Executor, claimed: Pick<Claimed, "id" | "userId">) {
  // Two statements: the delivery with its endpoint (one user's shard on Citus), then the event
  // by id (events live apart from users' rows there).
  const target = await db
    .selectFrom("webhook_deliveries as d")
    .innerJoin("webhook_endpoints as w", (j) =>
      j.onRef("w.user_id", "=", "d.user_id").onRef("w.id", "=", "d.endpoint_id"),
    )
    .select([
      "d.event_id",
      "w.url",
      "w.secret",
      "w.previous_secret",
      "w.previous_secret_until",
      "w.disabled_at",
      "w.deleted_at",
    ])
    .where("d.user_id", "=", claimed.userId)
    .where("d.id", "=", claimed.id)
    .executeTakeFirst();
  if (!target) return undefined;
  const event = await db
    .selectFrom("events")
    .select(["public_id", "type", "occurred_at", "data", "overrides"])
    .where("id", "=", target.event_id)
    .executeTakeFirst();
  if (!event) return undefined;
  const { event_id: _, ...endpoint } = target;
  return { ...endpoint, ...event };
}

export type DeliveryTarget = NonNullable<Awaited<ReturnType<typeof readDeliveryTarget>>>;

/** A claimed delivery locked for recording, with its endpoint's failure state. */
export interface LockedDelivery {
  id: number;
  userId: number;
  endpointId: number;
  status: DeliveryStatus;
  scheduleStep: number;
  /** Whether the claimer still holds the lease (no move took the delivery away meanwhile). */
  leased: boolean;
  endpoint: { failingSince: number | null; disabledAt: number | null };
}

/**
 * Locks the claimed delivery's endpoint, then the delivery — the order every writer of
 * deliveries follows (an endpoint change locks the endpoint first), so they cannot deadlock.
 */
export async function lockClaimedDelivery(tx: Tx, claimed: Claimed): Promise<LockedDelivery | undefined> {
  const endpoint = tx.trx
    .selectFrom("webhook_endpoints")
    .select(["id", "failing_since", "disabled_at"])
    .where("user_id", "=", claimed.userId)
    .where("id", "=", (eb) =>
      eb
        .selectFrom("webhook_deliveries")
        .select("endpoint_id")
        .where("user_id", "=", claimed.userId)
        .where("id", "=", claimed.id),
    );
  const e = await forUpdate(tx, endpoint).executeTakeFirst();
  const delivery = tx.trx
    .selectFrom("webhook_deliveries")
    .select(["endpoint_id", "status", "schedule_step", "lease_token"])
    .where("user_id", "=", claimed.userId)
    .where("id", "=", claimed.id);
  const d = await forUpdate(tx, delivery).executeTakeFirst();
  if (!e || !d) return undefined;
  return {
    id: claimed.id,
    userId: claimed.userId,
    endpointId: d.endpoint_id,
    status: d.status,
    scheduleStep: d.schedule_step,
    leased: d.lease_token === claimed.leaseToken,
    endpoint: { failingSince: e.failing_since, disabledAt: e.disabled_at },
  };
}

/** One attempt's record: what was sent when, and what came back. */
export interface AttemptRecord {
  attemptedAt: number;
  status: number | null;
  body: string | null;
  latencyMs: number;
  errorClass: ErrorClass | null;
}

/** Logs an attempt of a delivery, numbered after the ones before it. */
export async function recordAttempt(
  tx: Tx,
  { id, userId }: Pick<Claimed, "id" | "userId">,
  attempt: AttemptRecord,
): Promise<void> {
  const last = await tx.trx
    .selectFrom("webhook_attempts")
    .select((eb) => eb.fn.max("number").as("n"))
    .where("user_id", "=", userId)
    .where("delivery_id", "=", id)
    .executeTakeFirst();
  await tx.trx
    .insertInto("webhook_attempts")
    .values({
      user_id: userId,
      delivery_id: id,
      number: Number(last?.n ?? 0) + 1,
      attempted_at: attempt.attemptedAt,
      response_status: attempt.status,
      response_body: attempt.body,
      latency_ms: attempt.latencyMs,
      error_class: attempt.errorClass,
    })
    .execute();
}

/**
 * Releases a locked delivery's lease and moves it to `to` (succeeded, failed with its next
 * attempt due at `nextAttemptAtMs`, exhausted, held or cancelled), counting the move.
 */
export async function releaseDelivery(
  tx: Tx,
  delivery: LockedDelivery,
  to: DeliveryStatus,
  {
    scheduleStep,
    nextAttemptAtMs,
    now,
  }: { scheduleStep: number; nextAttemptAtMs: number | null; now: number },
): Promise<void> {
  await tx.trx
    .updateTable("webhook_deliveries")
    .set({
      status: to,
      schedule_step: scheduleStep,
      next_attempt_at_ms: nextAttemptAtMs,
      lease_token: null,
      lease_until_ms: null,
      updated_at: now,
    })
    .where("user_id", "=", delivery.userId)
    .where("id", "=", delivery.id)
    .execute();
  if (delivery.status !== to) {
    const endpoint = { userId: delivery.userId, endpointId: delivery.endpointId };
    await adjustDeliveryCount(tx, endpoint, delivery.status, -1);
    await adjustDeliveryCount(tx, endpoint, to, 1);
  }
}
