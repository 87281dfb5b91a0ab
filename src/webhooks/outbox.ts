import type { EventType } from "../catalog/catalog.js";
import { anyOf } from "../store/any-of.js";
import { lockEach } from "../store/for-update.js";
import { bulkColumns, insertMany } from "../store/insert-many.js";
import { CLAIM_BUCKETS } from "../store/migrations/0008-citus-ready.js";
import type { DeliveryStatus } from "../store/schema.js";
import type { Executor } from "../store/store.js";
import type { Tx } from "../store/transaction.js";

/**
 * The transactional outbox: delivery rows are written in the transaction that records their
 * event, so an acknowledged event always has its deliveries queued. This file and
 * outbox-claims.ts are the only writers of `webhook_deliveries` and its per-endpoint,
 * per-status counters: every status change is one of their named operations, and each keeps the
 * counts exact.
 */

/** One event's webhook recipients, as fan-out planned them. */
export interface DeliveryPlan {
  eventId: number;
  type: EventType;
  /** When the event was recorded: the deliveries are due then. */
  createdAt: number;
  /** Users whose endpoints receive it, without repeats. */
  recipients: number[];
}

const DELIVERY_COLUMNS = bulkColumns<ReturnType<typeof newDelivery>>({
  bigint: ["user_id", "endpoint_id", "event_id", "next_attempt_at_ms", "created_at", "updated_at"],
  integer: ["bucket", "schedule_step"],
  text: ["status"],
});

/** An endpoint, named by its user and its id (every delivery statement filters by both). */
export interface EndpointRef {
  userId: number;
  endpointId: number;
}

/** The claim bucket of a user's deliveries. */
export const claimBucket = (userId: number) => userId % CLAIM_BUCKETS;

/** A new delivery row: due at once, or held while its endpoint is disabled. */
const newDelivery = ({ userId, endpointId }: EndpointRef, eventId: number, held: boolean, now: number) => ({
  user_id: userId,
  bucket: claimBucket(userId),
  endpoint_id: endpointId,
  event_id: eventId,
  status: (held ? "held" : "pending") as DeliveryStatus,
  schedule_step: 0,
  next_attempt_at_ms: held ? null : now * 1000,
  created_at: now,
  updated_at: now,
});

/**
 * Queues a delivery for every live endpoint of each event's recipients whose event-type filter
 * takes it — held where the endpoint is disabled — in a few statements whatever the count.
 */
export async function queueDeliveries(tx: Tx, plans: DeliveryPlan[]): Promise<void> {
  const users = [...new Set(plans.flatMap((p) => p.recipients))];
  if (users.length === 0) return;
  const endpoints = await tx.trx
    .selectFrom("webhook_endpoints")
    .select(["id", "user_id", "event_types", "disabled_at"])
    .where("user_id", "in", users)
    .where("deleted_at", "is", null)
    .orderBy("id")
    .execute();
  if (endpoints.length === 0) return;
  const types = new Map(
    endpoints.map((e) => [e.id, e.event_types === null ? null : (JSON.parse(e.event_types) as string[])]),
  );
  const rows = [];
  for (const plan of plans) {
    for (const e of endpoints) {
      if (!plan.recipients.includes(e.user_id)) continue;
      if (types.get(e.id)?.includes(plan.type) === false) continue;
      const endpoint = { userId: e.user_id, endpointId: e.id };
      rows.push(newDelivery(endpoint, plan.eventId, e.disabled_at !== null, plan.createdAt));
    }
  }
  if (rows.length === 0) return;
  await insertMany(tx, { table: "webhook_deliveries", columns: DELIVERY_COLUMNS, rows });
  await countNewDeliveries(tx, rows);
  if (rows.some((r) => r.status === "pending")) tx.changes.deliveries = true;
}

/** Queues one delivery of an event to one endpoint (the test event), whatever its filter. */
export async function queueDelivery(
  tx: Tx,
  endpoint: EndpointRef,
  eventId: number,
  held: boolean,
  now: number,
): Promise<number> {
  const row = newDelivery(endpoint, eventId, held, now);
  const { id } = await tx.trx
    .insertInto("webhook_deliveries")
    .values(row)
    .returning("id")
    .executeTakeFirstOrThrow();
  await adjustDeliveryCount(tx, endpoint, row.status, 1);
  if (!held) tx.changes.deliveries = true;
  return id;
}

/** Counts newly queued deliveries, one upsert per (endpoint, status). */
function countNewDeliveries(
  tx: Tx,
  rows: { user_id: number; endpoint_id: number; status: DeliveryStatus }[],
): Promise<void> {
  return adjustDeliveryCounts(
    tx,
    rows.map((r) => ({ userId: r.user_id, endpointId: r.endpoint_id, status: r.status, delta: 1 })),
  );
}

/** A change to one endpoint's count of deliveries in one status. */
export interface CountDelta extends EndpointRef {
  status: DeliveryStatus;
  delta: number;
}

/**
 * Applies many count changes in one upsert: summed per (endpoint, status), zero sums left out,
 * in (endpoint, status) order so that concurrent writers lock counter rows in the same order.
 */
export async function adjustDeliveryCounts(tx: Tx, deltas: readonly CountDelta[]): Promise<void> {
  const counts = new Map<
    string,
    { user_id: number; endpoint_id: number; status: DeliveryStatus; count: number }
  >();
  for (const d of deltas) {
    const key = `${d.endpointId} ${d.status}`;
    const c = counts.get(key) ?? { user_id: d.userId, endpoint_id: d.endpointId, status: d.status, count: 0 };
    c.count += d.delta;
    counts.set(key, c);
  }
  const sorted = [...counts.values()]
    .filter((c) => c.count !== 0)
    .sort((a, b) => a.endpoint_id - b.endpoint_id || a.status.localeCompare(b.status));
  if (sorted.length === 0) return;
  await tx.trx
    .insertInto("webhook_delivery_counters")
    .values(sorted)
    .onConflict((oc) =>
      oc.columns(["user_id", "endpoint_id", "status"]).doUpdateSet((eb) => ({
        count: eb("webhook_delivery_counters.count", "+", eb.ref("excluded.count")),
      })),
    )
    .execute();
}

/** Adds `delta` to an endpoint's count of deliveries in `status`. */
export async function adjustDeliveryCount(
  tx: Tx,
  { userId, endpointId }: EndpointRef,
  status: DeliveryStatus,
  delta: number,
): Promise<void> {
  if (delta === 0) return;
  await tx.trx
    .insertInto("webhook_delivery_counters")
    .values({ user_id: userId, endpoint_id: endpointId, status, count: delta })
    .onConflict((oc) =>
      oc.columns(["user_id", "endpoint_id", "status"]).doUpdateSet((eb) => ({
        count: eb("webhook_delivery_counters.count", "+", delta),
      })),
    )
    .execute();
}

/** Which of an endpoint's deliveries a move applies to (beside their status). */
export interface DeliverySelection {
  /** Only deliveries whose event was recorded at or after this time (unix seconds). */
  since?: number;
  /** Only this delivery. */
  deliveryId?: number;
}

/**
 * Moves an endpoint's deliveries in `from` to `to`. Moving to `pending` starts a fresh schedule,
 * due now; moving anywhere else clears the schedule. Any lease is dropped, so a worker holding one
 * leaves the delivery where this put it. Returns how many moved.
 */
export async function moveDeliveries(
  tx: Tx,
  endpoint: EndpointRef,
  from: readonly DeliveryStatus[],
  to: DeliveryStatus,
  now: number,
  only: DeliverySelection = {},
): Promise<number> {
  let moved = 0;
  for (const status of from) {
    let query = tx.trx
      .updateTable("webhook_deliveries")
      .set({
        status: to,
        updated_at: now,
        next_attempt_at_ms: to === "pending" ? now * 1000 : null,
        lease_token: null,
        lease_until_ms: null,
        ...(to === "pending" && { schedule_step: 0 }),
      })
      .where("user_id", "=", endpoint.userId)
      .where("endpoint_id", "=", endpoint.endpointId)
      .where("status", "=", status);
    if (only.deliveryId !== undefined) query = query.where("id", "=", only.deliveryId);
    // A delivery is created with its event's time, so its own created_at selects by event time
    // without reading the events table (which lives apart from users' rows on Citus).
    if (only.since !== undefined) query = query.where("created_at", ">=", only.since);
    const n = Number((await query.executeTakeFirst()).numUpdatedRows);
    await adjustDeliveryCount(tx, endpoint, status, -n);
    await adjustDeliveryCount(tx, endpoint, to, n);
    moved += n;
  }
  if (to === "pending" && moved > 0) tx.changes.deliveries = true;
  return moved;
}

/** Holds an endpoint's queued deliveries (it was disabled): they wait until it is enabled. */
export const holdDeliveries = (tx: Tx, endpoint: EndpointRef, now: number) =>
  moveDeliveries(tx, endpoint, ["pending", "failed"], "held", now);

/** Sends what was held for an endpoint (it was enabled again), on a fresh schedule due now. */
export const releaseHeldDeliveries = (tx: Tx, endpoint: EndpointRef, now: number) =>
  moveDeliveries(tx, endpoint, ["held"], "pending", now);

/** Cancels every delivery still waiting to be sent to an endpoint (it was deleted). */
export const cancelDeliveries = (tx: Tx, endpoint: EndpointRef, now: number) =>
  moveDeliveries(tx, endpoint, ["pending", "failed", "held"], "cancelled", now);

/**
 * Locks endpoints until the transaction ends, in ascending id order — the order every writer of
 * several endpoints follows — one statement each on PostgreSQL (each a single shard on Citus).
 * Returns what the worker's outcomes need of each.
 */
export function lockEndpoints(tx: Tx, refs: readonly EndpointRef[]) {
  const sorted = [...refs].sort((a, b) => a.endpointId - b.endpointId);
  return lockEach(tx, sorted, (some) =>
    tx.trx
      .selectFrom("webhook_endpoints")
      .select(["id", "failing_since", "disabled_at", "deleted_at"])
      .where((eb) =>
        // One endpoint (PostgreSQL locks them one by one): by its key, one shard on Citus.
        some.length === 1 && some[0]
          ? eb.and([eb("user_id", "=", some[0].userId), eb("id", "=", some[0].endpointId)])
          : eb.and([
              anyOf(tx.dialect, "user_id", [...new Set(some.map((r) => r.userId))]),
              anyOf(
                tx.dialect,
                "id",
                some.map((r) => r.endpointId),
              ),
            ]),
      ),
  );
}

/** Statuses a delivery never leaves by itself: only these are pruned. */
const FINISHED: DeliveryStatus[] = ["succeeded", "exhausted", "cancelled"];

/**
 * Retention's side of the outbox: deletes up to `limit` finished deliveries (succeeded, exhausted
 * or cancelled) that last changed before `cutoff` (unix seconds), with all their attempts, and
 * takes them off the per-endpoint counts, in the caller's transaction. Returns how many
 * deliveries and attempts it deleted. Deliveries still waiting (pending, failed, held) are kept
 * however old, with their attempts: they may yet be sent.
 *
 * It locks the endpoints first, in ascending order, as every writer of deliveries does, so a
 * redelivery moving the same rows cannot deadlock with it, then reads the candidates again: one
 * moved back to pending meanwhile stays.
 */
export async function pruneDeliveries(
  tx: Tx,
  cutoff: number,
  limit: number,
): Promise<{ deliveries: number; attempts: number }> {
  const candidates = await tx.trx
    .selectFrom("webhook_deliveries")
    .select(["id", "user_id", "endpoint_id"])
    .where("status", "in", FINISHED)
    .where("updated_at", "<", cutoff)
    .orderBy("updated_at")
    .limit(limit)
    .execute();
  if (candidates.length === 0) return { deliveries: 0, attempts: 0 };
  const users = [...new Set(candidates.map((c) => c.user_id))];
  await lockEndpoints(tx, [
    ...new Map(
      candidates.map((c) => [c.endpoint_id, { userId: c.user_id, endpointId: c.endpoint_id }]),
    ).values(),
  ]);
  // Under the endpoint locks nothing moves these deliveries: what this reads is what goes.
  const gone = await tx.trx
    .selectFrom("webhook_deliveries")
    .select(["id", "user_id", "endpoint_id", "status"])
    .where("user_id", "in", users)
    .where(
      "id",
      "in",
      candidates.map((c) => c.id),
    )
    .where("status", "in", FINISHED)
    .where("updated_at", "<", cutoff)
    .execute();
  if (gone.length === 0) return { deliveries: 0, attempts: 0 };
  const ids = gone.map((g) => g.id);
  // Attempts first: the foreign key is checked at the end of each statement.
  const attempts = await tx.trx
    .deleteFrom("webhook_attempts")
    .where("user_id", "in", users)
    .where("delivery_id", "in", ids)
    .executeTakeFirst();
  await tx.trx
    .deleteFrom("webhook_deliveries")
    .where("user_id", "in", users)
    .where("id", "in", ids)
    .execute();
  const counts = new Map<string, { endpoint: EndpointRef; status: DeliveryStatus; n: number }>();
  for (const g of gone) {
    const key = `${g.endpoint_id} ${g.status}`;
    const endpoint = { userId: g.user_id, endpointId: g.endpoint_id };
    const c = counts.get(key) ?? { endpoint, status: g.status, n: 0 };
    c.n++;
    counts.set(key, c);
  }
  const sorted = [...counts.values()].sort(
    (a, b) => a.endpoint.endpointId - b.endpoint.endpointId || a.status.localeCompare(b.status),
  );
  for (const c of sorted) await adjustDeliveryCount(tx, c.endpoint, c.status, -c.n);
  return { deliveries: gone.length, attempts: Number(attempts.numDeletedRows) };
}

/** Which of `eventIds` still have deliveries (retention keeps those events). */
export async function eventsWithDeliveries(db: Executor, eventIds: readonly number[]): Promise<Set<number>> {
  if (eventIds.length === 0) return new Set();
  const rows = await db
    .selectFrom("webhook_deliveries")
    .select("event_id")
    .distinct()
    .where("event_id", "in", eventIds)
    .execute();
  return new Set(rows.map((r) => r.event_id));
}
