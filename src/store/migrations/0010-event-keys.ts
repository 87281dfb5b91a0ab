import { type Kysely, sql } from "kysely";
import type { Dialect } from "../store.js";

/**
 * Producers' event ids get a table of their own, `event_keys` (the id and the fingerprint of the
 * content first posted with it), so that `events` need not hold a unique index on anything but
 * its own id. On Citus each can then be sharded by its own key (`event_keys` by the producer's
 * id, `events` by id) while the producer's id stays exactly unique across the whole cluster.
 *
 * `events` keeps `idempotency_key` as a plain column, so that retention can delete an event's key
 * with it. On PostgreSQL its unique constraint goes (the key's table holds it now); SQLite keeps
 * the constraint, which it cannot drop without rebuilding the table and which the key's table
 * now always satisfies first. The unique index on `public_id` goes on both: nothing looks an
 * event up by it, and it is 96 random bits (a repeat is as likely as guessing a key).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable("event_keys")
    .addColumn("idempotency_key", "text", (c) => c.primaryKey())
    .addColumn("fingerprint", "text", (c) => c.notNull())
    .execute();
  await sql`
    insert into event_keys (idempotency_key, fingerprint)
    select idempotency_key, coalesce(fingerprint, '') from events where idempotency_key is not null`.execute(
    db,
  );
  await db.schema.alterTable("events").dropColumn("fingerprint").execute();
  await db.schema.dropIndex("events_public_id").execute();
  if (dialect === "postgres") {
    await sql`alter table events drop constraint events_idempotency_key_key`.execute(db);
  }
}
