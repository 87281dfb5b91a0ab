import type { DeliveryStatus } from "../store/schema.js";
import type { Tx } from "../store/transaction.js";

/**
 * The transactional outbox: delivery rows are written in the transaction that records their
 * event (events/fan-out.ts), so an acknowledged event always has its deliveries queued. Every
 * status change of a delivery goes through here, keeping the per-endpoint, per-status counts exact.
 */

/** Writes one delivery, due now (or held), and counts it. */
export async function insertDelivery(
  tx: Tx,
  endpointId: number,
  eventId: number,
  held: boolean,
  now: number,
): Promise<number> {
  const status: DeliveryStatus = held ? "held" : "pending";
  const { id } = await tx.trx
    .insertInto("webhook_deliveries")
    .values({
      endpoint_id: endpointId,
      event_id: eventId,
      status,
      schedule_step: 0,
      next_attempt_at_ms: held ? null : now * 1000,
      created_at: now,
      updated_at: now,
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  await count(tx, endpointId, status, 1);
  if (!held) tx.changes.deliveries = true;
  return id;
}

/** Counts newly written deliveries, one upsert per (endpoint, status). */
export async function countMany(
  tx: Tx,
  rows: { endpoint_id: number; status: DeliveryStatus }[],
): Promise<void> {
  const counts = new Map<string, { endpoint_id: number; status: DeliveryStatus; count: number }>();
  for (const r of rows) {
    const key = `${r.endpoint_id} ${r.status}`;
    const c = counts.get(key) ?? { endpoint_id: r.endpoint_id, status: r.status, count: 0 };
    c.count++;
    counts.set(key, c);
  }
  // In (endpoint, status) order, so concurrent fan-outs lock counter rows in the same order.
  const sorted = [...counts.values()].sort(
    (a, b) => a.endpoint_id - b.endpoint_id || a.status.localeCompare(b.status),
  );
  await tx.trx
    .insertInto("webhook_delivery_counters")
    .values(sorted)
    .onConflict((oc) =>
      oc.columns(["endpoint_id", "status"]).doUpdateSet((eb) => ({
        count: eb("webhook_delivery_counters.count", "+", eb.ref("excluded.count")),
      })),
    )
    .execute();
}

/** Adds `delta` to an endpoint's count of deliveries in `status`. */
export async function count(
  tx: Tx,
  endpointId: number,
  status: DeliveryStatus,
  delta: number,
): Promise<void> {
  if (delta === 0) return;
  await tx.trx
    .insertInto("webhook_delivery_counters")
    .values({ endpoint_id: endpointId, status, count: delta })
    .onConflict((oc) =>
      oc.columns(["endpoint_id", "status"]).doUpdateSet((eb) => ({
        count: eb("webhook_delivery_counters.count", "+", delta),
      })),
    )
    .execute();
}

export interface Restart {
  /** Only deliveries whose event was recorded at or after this time (unix seconds). */
  since?: number;
  /** Only this delivery. */
  deliveryId?: number;
}

/**
 * Moves an endpoint's deliveries in `from` to `to`. Moving to `pending` starts a fresh schedule,
 * due now; moving anywhere else clears the schedule. Returns how many moved.
 */
export async function moveDeliveries(
  tx: Tx,
  endpointId: number,
  from: DeliveryStatus[],
  to: DeliveryStatus,
  now: number,
  only: Restart = {},
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
      .where("endpoint_id", "=", endpointId)
      .where("status", "=", status);
    if (only.deliveryId !== undefined) query = query.where("id", "=", only.deliveryId);
    if (only.since !== undefined) {
      const since = only.since;
      query = query.where("event_id", "in", (eb) =>
        eb.selectFrom("events").select("id").where("created_at", ">=", since),
      );
    }
    const n = Number((await query.executeTakeFirst()).numUpdatedRows);
    await count(tx, endpointId, status, -n);
    await count(tx, endpointId, to, n);
    moved += n;
  }
  if (to === "pending" && moved > 0) tx.changes.deliveries = true;
  return moved;
}
