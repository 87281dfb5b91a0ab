import { type Kysely, sql } from "kysely";

/**
 * Claims per endpoint: a worker leases one endpoint's due deliveries at a time, soonest due
 * first, as many as it will send before the lease runs out. This index gives it them in that
 * order however long the endpoint's backlog is (one user's shard on Citus, like every index of a
 * user's rows: it starts with `user_id`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex("webhook_deliveries_endpoint_due")
    .on("webhook_deliveries")
    .columns(["user_id", "endpoint_id", "next_attempt_at_ms"])
    .where(sql.ref("status"), "in", sql`('pending', 'failed')`)
    .execute();
}
