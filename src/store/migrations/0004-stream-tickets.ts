import type { Kysely } from "kysely";

/** Single-use tickets that let a browser's EventSource (which cannot send headers) open a stream. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("stream_tickets")
    .addColumn("secret_hash", "text", (c) => c.primaryKey())
    .addColumn("key_id", "bigint", (c) => c.notNull().references("api_keys.id"))
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("used_at", "bigint")
    .execute();
  await db.schema.createIndex("stream_tickets_expiry").on("stream_tickets").column("expires_at").execute();
}
