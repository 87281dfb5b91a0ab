import { forUpdate } from "../store/for-update.js";
import type { DeliveryStatus, ErrorClass } from "../store/schema.js";
import type { Executor } from "../store/store.js";
import type { Tx } from "../store/transaction.js";
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

/**
 * Claims up to `limit` due deliveries (pending or failed, due by `nowMs`, with no live lease)
 * under one new lease, soonest due first. Concurrent claimers skip each other's rows
 * (`SKIP LOCKED` on PostgreSQL), so no delivery is claimed twice.
 */
export async function claimDueDeliveries(
  tx: Tx,
  {
    limit,
    nowMs,
    leaseMs,
    leaseToken,
  }: { limit: number; nowMs: number; leaseMs: number; leaseToken: string },
): Promise<Claimed[]> {
  const due = tx.trx
    .selectFrom("webhook_deliveries")
    .select("id")
    .where("status", "in", ["pending", "failed"])
    .where("next_attempt_at_ms", "<=", nowMs)
    .where((eb) => eb.or([eb("lease_until_ms", "is", null), eb("lease_until_ms", "<", nowMs)]))
    .orderBy("next_attempt_at_ms")
    .limit(limit);
  const leaseUntilMs = nowMs + leaseMs;
  const rows = await tx.trx
    .updateTable("webhook_deliveries")
    .set({ lease_token: leaseToken, lease_until_ms: leaseUntilMs })
    .where("id", "in", forUpdate(tx, due, { skipLocked: true }))
    .returning(["id", "user_id"])
    .execute();
  return rows.map((r) => ({ id: r.id, userId: r.user_id, leaseToken, leaseUntilMs }));
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
