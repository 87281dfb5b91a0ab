import { type Kysely, sql } from "kysely";

/**
 * Retention (`BELFRY_RETENTION_DAYS`): the indexes that let the background pruning find old rows
 * without scanning, and delete events cheaply. Deleting an event makes both databases check that
 * no notification or delivery still refers to it (the foreign keys); without an index on
 * `event_id` each such check would scan the whole child table.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Old feed rows, oldest first, whoever they belong to.
  await db.schema.createIndex("notifications_created").on("notifications").column("created_at").execute();
  await db.schema.createIndex("notifications_event").on("notifications").column("event_id").execute();
  // Old events in (created_at, id) order, so a pass can step past events still referred to.
  await db.schema.createIndex("events_created").on("events").columns(["created_at", "id"]).execute();
  await db.schema
    .createIndex("webhook_deliveries_event")
    .on("webhook_deliveries")
    .column("event_id")
    .execute();
  // Finished deliveries by when they finished: only these are ever pruned.
  await db.schema
    .createIndex("webhook_deliveries_finished")
    .on("webhook_deliveries")
    .column("updated_at")
    .where(sql.ref("status"), "in", sql`('succeeded', 'exhausted', 'cancelled')`)
    .execute();
}
