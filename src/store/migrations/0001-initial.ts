import { type Kysely, sql } from "kysely";
import type { Dialect } from "../store.js";

/** Users, orgs, keys, events, the feed and its counters. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  // An id that is assigned in insertion order and never reused (SQLite needs AUTOINCREMENT for that).
  const id = dialect === "sqlite" ? ("integer" as const) : ("bigint" as const);
  const table = (name: string) =>
    db.schema
      .createTable(name)
      .addColumn("id", id, (c) =>
        dialect === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey().generatedByDefaultAsIdentity(),
      );

  await table("users")
    .addColumn("email", "text", (c) => c.notNull())
    .addColumn("email_key", "text", (c) => c.notNull().unique())
    .addColumn("name", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();

  await table("orgs")
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("memberships")
    .addColumn("org_id", "bigint", (c) => c.notNull().references("orgs.id"))
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("role", "text", (c) => c.notNull().check(sql`role in ('owner', 'admin', 'member')`))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("memberships_pk", ["org_id", "user_id"])
    .execute();
  await db.schema.createIndex("memberships_user").on("memberships").column("user_id").execute();

  await table("api_keys")
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("org_id", "bigint", (c) => c.references("orgs.id"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("prefix", "text", (c) => c.notNull())
    .addColumn("secret_hash", "text", (c) => c.notNull().unique())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("revoked_at", "bigint")
    .execute();
  await db.schema.createIndex("api_keys_user").on("api_keys").column("user_id").execute();
  await db.schema.createIndex("api_keys_org_user").on("api_keys").columns(["org_id", "user_id"]).execute();

  await table("events")
    .addColumn("idempotency_key", "text", (c) => c.unique())
    .addColumn("fingerprint", "text")
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("user_id", "bigint", (c) => c.references("users.id"))
    .addColumn("org_id", "bigint", (c) => c.references("orgs.id"))
    .addColumn("actor_user_id", "bigint", (c) => c.references("users.id"))
    .addColumn("data", "text", (c) => c.notNull())
    .addColumn("overrides", "text")
    .addColumn("occurred_at", "bigint", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();

  await table("notifications")
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("event_id", "bigint", (c) => c.notNull().references("events.id"))
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("title", "text", (c) => c.notNull())
    .addColumn("body", "text", (c) => c.notNull())
    .addColumn("link", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("read_at", "bigint")
    .execute();
  // One index per filter combination of the list endpoint, each in its order (created_at, id), so
  // every page-1 query reads just the rows it returns.
  const feedIndex = (name: string, columns: string[], read?: "unread" | "read") => {
    const ix = db.schema.createIndex(name).on("notifications").columns(columns);
    const partial =
      read === undefined ? ix : ix.where(sql.ref("read_at"), read === "unread" ? "is" : "is not", null);
    return partial.execute();
  };
  const order = ["created_at", "id"];
  await feedIndex("notifications_feed", ["user_id", ...order]);
  await feedIndex("notifications_feed_type", ["user_id", "type", ...order]);
  await feedIndex("notifications_feed_unread", ["user_id", ...order], "unread");
  await feedIndex("notifications_feed_type_unread", ["user_id", "type", ...order], "unread");
  await feedIndex("notifications_feed_read", ["user_id", ...order], "read");
  await feedIndex("notifications_feed_type_read", ["user_id", "type", ...order], "read");

  await db.schema
    .createTable("feed_states")
    .addColumn("user_id", "bigint", (c) => c.primaryKey().references("users.id"))
    .addColumn("version", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("muted_types", "text", (c) => c.notNull().defaultTo("[]"))
    .execute();

  await db.schema
    .createTable("feed_counters")
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("total", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("unread", "bigint", (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint("feed_counters_pk", ["user_id", "type"])
    .execute();
}
