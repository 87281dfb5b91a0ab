import { type Kysely, sql } from "kysely";
import type { Dialect } from "../store.js";

/**
 * Webhooks: endpoints, one delivery per (event, endpoint) written in the event's transaction (the
 * outbox), the attempts made for each, and kept per-status delivery counts. Events get an opaque
 * public id, the `id` of every webhook payload.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === "sqlite" ? ("integer" as const) : ("bigint" as const);
  const table = (name: string) =>
    db.schema
      .createTable(name)
      .addColumn("id", id, (c) =>
        dialect === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey().generatedByDefaultAsIdentity(),
      );

  await db.schema.alterTable("events").addColumn("public_id", "text").execute();
  await sql`update events set public_id = 'evt_' || cast(id as text)`.execute(db);
  await db.schema.createIndex("events_public_id").on("events").column("public_id").unique().execute();

  await table("webhook_endpoints")
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("url", "text", (c) => c.notNull())
    .addColumn("event_types", "text") // JSON array; null = every type
    .addColumn("description", "text")
    .addColumn("secret", "text", (c) => c.notNull())
    .addColumn("previous_secret", "text")
    .addColumn("previous_secret_until", "bigint")
    .addColumn("disabled_at", "bigint")
    .addColumn("disabled_reason", "text")
    .addColumn("failing_since", "bigint")
    .addColumn("deleted_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("webhook_endpoints_user")
    .on("webhook_endpoints")
    .columns(["user_id", "id"])
    .execute();

  await table("webhook_deliveries")
    .addColumn("endpoint_id", "bigint", (c) => c.notNull().references("webhook_endpoints.id"))
    .addColumn("event_id", "bigint", (c) => c.notNull().references("events.id"))
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("schedule_step", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_attempt_at_ms", "bigint")
    .addColumn("lease_token", "text")
    .addColumn("lease_until_ms", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  // What workers claim: due rows in time order.
  await db.schema
    .createIndex("webhook_deliveries_due")
    .on("webhook_deliveries")
    .column("next_attempt_at_ms")
    .where(sql.ref("status"), "in", sql`('pending', 'failed')`)
    .execute();
  await db.schema
    .createIndex("webhook_deliveries_endpoint")
    .on("webhook_deliveries")
    .columns(["endpoint_id", "id"])
    .execute();
  await db.schema
    .createIndex("webhook_deliveries_endpoint_status")
    .on("webhook_deliveries")
    .columns(["endpoint_id", "status", "id"])
    .execute();

  await table("webhook_attempts")
    .addColumn("delivery_id", "bigint", (c) => c.notNull().references("webhook_deliveries.id"))
    .addColumn("number", "integer", (c) => c.notNull())
    .addColumn("attempted_at", "bigint", (c) => c.notNull())
    .addColumn("response_status", "integer")
    .addColumn("response_body", "text")
    .addColumn("latency_ms", "integer", (c) => c.notNull())
    .addColumn("error_class", "text")
    .execute();
  await db.schema
    .createIndex("webhook_attempts_delivery")
    .on("webhook_attempts")
    .columns(["delivery_id", "number"])
    .execute();

  await db.schema
    .createTable("webhook_delivery_counters")
    .addColumn("endpoint_id", "bigint", (c) => c.notNull().references("webhook_endpoints.id"))
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("count", "bigint", (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint("webhook_delivery_counters_pk", ["endpoint_id", "status"])
    .execute();
}
