import { type Kysely, sql } from "kysely";
import type { Dialect } from "../store.js";

/**
 * Claims per endpoint: a worker leases one endpoint's due deliveries at a time, soonest due
 * first, as many as it will send before the lease runs out. This index gives it them in that
 * order however long the endpoint's backlog is (one user's shard on Citus, like every index of a
 * user's rows: it starts with `user_id`).
 *
 * On PostgreSQL, delivery rows are also written with room to spare in their pages: a lease only
 * changes columns no index holds, so with free space on the page PostgreSQL updates the row in
 * place (a heap-only update) instead of adding an entry to each of the table's indexes.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema
    .createIndex("webhook_deliveries_endpoint_due")
    .on("webhook_deliveries")
    .columns(["user_id", "endpoint_id", "next_attempt_at_ms"])
    .where(sql.ref("status"), "in", sql`('pending', 'failed')`)
    .execute();
  if (dialect === "postgres") await sql`alter table webhook_deliveries set (fillfactor = 70)`.execute(db);
}
