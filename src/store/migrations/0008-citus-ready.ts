import { type Kysely, sql } from "kysely";
import type { Dialect } from "../store.js";

/** How many claim buckets the deliveries are spread over (see outbox-claims.ts). */
export const CLAIM_BUCKETS = 64;

/** Tables whose `id` was an identity column; on PostgreSQL it becomes a plain sequence default. */
const ID_TABLES = [
  "users",
  "orgs",
  "api_keys",
  "sessions",
  "events",
  "notifications",
  "webhook_endpoints",
  "webhook_deliveries",
  "webhook_attempts",
];

/**
 * A schema that Citus can distribute by user (see docs/citus-layout.md), with the same meaning
 * on every backend:
 *
 * - deliveries, their attempts and their per-status counts carry the user they belong to, and
 *   deliveries a claim bucket (`user_id % CLAIM_BUCKETS`), so every statement about one user's
 *   webhooks names that user and workers can split the queue between them;
 * - on PostgreSQL, ids come from sequences instead of identity columns (Citus refuses to
 *   distribute a table with one), primary keys and foreign keys between per-user tables include
 *   `user_id`, and nothing references `events` or is referenced from it: events stay on the
 *   coordinator, keyed by their own id. Users and orgs are never deleted, so the dropped
 *   references from events guarded nothing. SQLite keeps its keys (its rowid ids and its
 *   single-column keys mean the same there).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  for (const table of ["webhook_deliveries", "webhook_attempts", "webhook_delivery_counters"]) {
    await db.schema.alterTable(table).addColumn("user_id", "bigint").execute();
  }
  await db.schema
    .alterTable("webhook_deliveries")
    .addColumn("bucket", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`
    update webhook_deliveries set user_id =
      (select w.user_id from webhook_endpoints w where w.id = webhook_deliveries.endpoint_id)`.execute(db);
  await sql`update webhook_deliveries set bucket = user_id % ${sql.lit(CLAIM_BUCKETS)}`.execute(db);
  await sql`
    update webhook_attempts set user_id =
      (select d.user_id from webhook_deliveries d where d.id = webhook_attempts.delivery_id)`.execute(db);
  await sql`
    update webhook_delivery_counters set user_id =
      (select w.user_id from webhook_endpoints w where w.id = webhook_delivery_counters.endpoint_id)`.execute(
    db,
  );

  if (dialect === "postgres") await postgresKeys(db);

  // Every index a user's webhook statements use starts with user_id; claims walk the buckets.
  await db.schema.dropIndex("webhook_deliveries_due").execute();
  await db.schema
    .createIndex("webhook_deliveries_due")
    .on("webhook_deliveries")
    .columns(["bucket", "next_attempt_at_ms"])
    .where(sql.ref("status"), "in", sql`('pending', 'failed')`)
    .execute();
  await db.schema.dropIndex("webhook_deliveries_endpoint").execute();
  await db.schema.dropIndex("webhook_deliveries_endpoint_status").execute();
  await db.schema
    .createIndex("webhook_deliveries_endpoint")
    .on("webhook_deliveries")
    .columns(["user_id", "endpoint_id", "id"])
    .execute();
  await db.schema
    .createIndex("webhook_deliveries_endpoint_status")
    .on("webhook_deliveries")
    .columns(["user_id", "endpoint_id", "status", "id"])
    .execute();
  await db.schema.dropIndex("webhook_attempts_delivery").execute();
  await db.schema
    .createIndex("webhook_attempts_delivery")
    .on("webhook_attempts")
    .columns(["user_id", "delivery_id", "number"])
    .execute();
  if (dialect === "sqlite") {
    // The counters' upsert names (user_id, endpoint_id, status) on both backends.
    await db.schema
      .createIndex("webhook_delivery_counters_user")
      .on("webhook_delivery_counters")
      .columns(["user_id", "endpoint_id", "status"])
      .unique()
      .execute();
  }
}

async function postgresKeys(db: Kysely<unknown>): Promise<void> {
  for (const table of ID_TABLES) {
    const seq = sql.id(`${table}_id_seq`);
    const t = sql.id(table);
    // Dropping the identity drops its sequence; a new one continues where it stopped.
    await sql`alter table ${t} alter column id drop identity`.execute(db);
    await sql`create sequence ${seq} owned by ${t}.id`.execute(db);
    await sql`select setval(${sql.lit(`${table}_id_seq`)}, coalesce((select max(id) from ${t}), 0) + 1, false)`.execute(
      db,
    );
    await sql`alter table ${t} alter column id set default nextval(${sql.lit(`${table}_id_seq`)})`.execute(
      db,
    );
  }
  const drop = (table: string, constraint: string) =>
    sql`alter table ${sql.id(table)} drop constraint if exists ${sql.id(constraint)}`.execute(db);
  // Events live apart from users' shards: nothing references them, and they reference nothing.
  await drop("notifications", "notifications_event_id_fkey");
  await drop("webhook_deliveries", "webhook_deliveries_event_id_fkey");
  await drop("events", "events_user_id_fkey");
  await drop("events", "events_org_id_fkey");
  await drop("events", "events_actor_user_id_fkey");
  // Keys between per-user tables include user_id.
  await drop("webhook_deliveries", "webhook_deliveries_endpoint_id_fkey");
  await drop("webhook_delivery_counters", "webhook_delivery_counters_endpoint_id_fkey");
  await drop("webhook_attempts", "webhook_attempts_delivery_id_fkey");
  for (const table of ["webhook_deliveries", "webhook_attempts", "webhook_delivery_counters"]) {
    await sql`alter table ${sql.id(table)} alter column user_id set not null`.execute(db);
  }
  const primaryKey = async (table: string, columns: string[]) => {
    await drop(table, `${table}_pkey`);
    await sql`alter table ${sql.id(table)} add constraint ${sql.id(`${table}_pkey`)} primary key (${sql.join(columns.map((c) => sql.id(c)))})`.execute(
      db,
    );
  };
  await primaryKey("notifications", ["user_id", "id"]);
  await primaryKey("webhook_endpoints", ["user_id", "id"]);
  await primaryKey("webhook_deliveries", ["user_id", "id"]);
  await primaryKey("webhook_attempts", ["user_id", "id"]);
  await drop("webhook_delivery_counters", "webhook_delivery_counters_pk");
  await primaryKey("webhook_delivery_counters", ["user_id", "endpoint_id", "status"]);
  await sql`drop index if exists webhook_endpoints_user`.execute(db);
  await sql`
    alter table webhook_deliveries add constraint webhook_deliveries_endpoint_fkey
      foreign key (user_id, endpoint_id) references webhook_endpoints (user_id, id)`.execute(db);
  await sql`
    alter table webhook_delivery_counters add constraint webhook_delivery_counters_endpoint_fkey
      foreign key (user_id, endpoint_id) references webhook_endpoints (user_id, id)`.execute(db);
  await sql`
    alter table webhook_attempts add constraint webhook_attempts_delivery_fkey
      foreign key (user_id, delivery_id) references webhook_deliveries (user_id, id)`.execute(db);
}
