import { type Kysely, sql } from "kysely";
import type { Dialect } from "../store.js";

/**
 * Browser sessions: short-lived `bfs_…` tokens the platform mints for a signed-in user, kept as
 * their hash. Stream tickets may now be minted by a session instead of a key, so `key_id` becomes
 * optional beside a new `session_id` (exactly one is set); a session's tickets go with it.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === "sqlite" ? ("integer" as const) : ("bigint" as const);
  await db.schema
    .createTable("sessions")
    .addColumn("id", id, (c) =>
      dialect === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey().generatedByDefaultAsIdentity(),
    )
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    // The authentication lookup: one unique-index probe per request.
    .addColumn("secret_hash", "text", (c) => c.notNull().unique())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  // Ending a user's sessions, and keeping each user under the cap (oldest first).
  await db.schema.createIndex("sessions_user").on("sessions").columns(["user_id", "id"]).execute();
  // Sweeping long-expired sessions.
  await db.schema.createIndex("sessions_expiry").on("sessions").column("expires_at").execute();

  // SQLite cannot drop a NOT NULL in place, so the tickets table is rebuilt (the same way on
  // both backends); the tickets in flight, valid for a minute at most, are copied over.
  await db.schema
    .createTable("stream_tickets_next")
    .addColumn("secret_hash", "text", (c) => c.primaryKey())
    .addColumn("key_id", "bigint", (c) => c.references("api_keys.id"))
    .addColumn("session_id", "bigint", (c) => c.references("sessions.id").onDelete("cascade"))
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("used_at", "bigint")
    .addCheckConstraint("stream_tickets_one_credential", sql`(key_id is null) <> (session_id is null)`)
    .execute();
  await sql`
    insert into stream_tickets_next (secret_hash, key_id, user_id, expires_at, used_at)
    select secret_hash, key_id, user_id, expires_at, used_at from stream_tickets`.execute(db);
  await db.schema.dropTable("stream_tickets").execute();
  await db.schema.alterTable("stream_tickets_next").renameTo("stream_tickets").execute();
  await db.schema.createIndex("stream_tickets_expiry").on("stream_tickets").column("expires_at").execute();
  // Ending sessions cascades here; without an index every deleted session would scan the table.
  await db.schema.createIndex("stream_tickets_session").on("stream_tickets").column("session_id").execute();
}
