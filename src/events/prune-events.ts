import { eventsWithNotifications } from "../feed/prune-notifications.js";
import type { Tx } from "../store/transaction.js";
import { eventsWithDeliveries } from "../webhooks/outbox.js";
import { forgetEventKeys } from "./event-keys.js";

/** Where a pass over old events has got to: the last event it looked at, in (created_at, id) order. */
export interface EventCursor {
  createdAt: number;
  id: number;
}

/**
 * Retention's side of the event record: looks at up to `limit` events recorded before `cutoff`
 * (unix seconds), after `cursor`, oldest first, and deletes those that no feed row and no
 * delivery refers to any longer, in the caller's transaction. An event still referred to — a
 * feed row whose `occurred_at` is newer than the event's recording, or a delivery still waiting
 * to be sent — is kept, and goes in a later pass once they have gone.
 *
 * Returns how many it deleted and the cursor to continue from (undefined: nothing is left to
 * look at). With the event goes its idempotency key: a producer re-posting an id older than the
 * retention gets a new event.
 */
export async function pruneEvents(
  tx: Tx,
  cutoff: number,
  limit: number,
  cursor?: EventCursor,
): Promise<{ deleted: number; next: EventCursor | undefined }> {
  let query = tx.trx
    .selectFrom("events")
    .select(["id", "created_at", "idempotency_key"])
    .where("created_at", "<", cutoff)
    .orderBy("created_at")
    .orderBy("id")
    .limit(limit);
  if (cursor) {
    const { createdAt, id } = cursor;
    query = query.where((eb) =>
      eb.or([
        eb("created_at", ">", createdAt),
        eb.and([eb("created_at", "=", createdAt), eb("id", ">", id)]),
      ]),
    );
  }
  const events = await query.execute();
  const last = events.at(-1);
  if (!last) return { deleted: 0, next: undefined };
  const ids = events.map((e) => e.id);
  const [withRows, withDeliveries] = [
    await eventsWithNotifications(tx.trx, ids),
    await eventsWithDeliveries(tx.trx, ids),
  ];
  const free = events.filter((e) => !withRows.has(e.id) && !withDeliveries.has(e.id));
  let deleted = 0;
  if (free.length > 0) {
    const result = await tx.trx
      .deleteFrom("events")
      .where(
        "id",
        "in",
        free.map((e) => e.id),
      )
      .executeTakeFirst();
    deleted = Number(result.numDeletedRows);
    await forgetEventKeys(
      tx.trx,
      free.flatMap((e) => (e.idempotency_key === null ? [] : [e.idempotency_key])),
    );
  }
  const next = events.length < limit ? undefined : { createdAt: last.created_at, id: last.id };
  return { deleted, next };
}
