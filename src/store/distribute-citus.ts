import { sql } from "kysely";
import type { Store } from "./store.js";

/** Small, rarely written tables every node reads: copied whole to every node. */
export const REFERENCE_TABLES = ["users", "orgs", "memberships", "api_keys", "sessions"] as const;

/**
 * Per-user tables, sharded by `user_id` and co-located: one user's rows of all of them live on
 * one node, so a statement naming the user runs there alone. The first one anchors the group.
 */
export const USER_TABLES = [
  "feed_states",
  "notifications",
  "feed_counters",
  "feed_read_marks",
  "webhook_endpoints",
  "webhook_deliveries",
  "webhook_attempts",
  "webhook_delivery_counters",
] as const;

/**
 * Tables sharded by a key of their own, not co-located with users: events by id (an event may
 * reach many users), producers' event ids by the id itself (so each stays unique across the
 * cluster), stream tickets by their hash.
 */
export const KEYED_TABLES = {
  events: "id",
  event_keys: "idempotency_key",
  stream_tickets: "secret_hash",
} as const;

/**
 * Distributes the schema when the database has the citus extension (else does nothing): the
 * reference tables, the per-user tables co-located by `user_id`, the others by their own key.
 * Nothing busy stays on the coordinator. Idempotent:
 * tables already distributed are left alone, so every start may call it.
 *
 * Citus checks foreign keys as tables change hands, so the ones between Belfry's tables are
 * dropped first and put back once every table is in place — in one transaction, under an
 * advisory lock, so instances starting together distribute once.
 *
 * @returns what it did, one line per table (empty when there was nothing to do).
 */
export async function distributeForCitus(store: Store): Promise<string[]> {
  if (store.dialect !== "postgres") return [];
  const { rows: ext } = await sql<{ n: number }>`
    select count(*)::int as n from pg_extension where extname = 'citus'`.execute(store.db);
  if (!ext[0]?.n) return [];
  const all: string[] = [...REFERENCE_TABLES, ...USER_TABLES, ...Object.keys(KEYED_TABLES)];
  return store.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('belfry.distribute-citus'))`.execute(trx);
    const { rows: done } = await sql<{ name: string }>`
      select logicalrelid::regclass::text as name from pg_dist_partition`.execute(trx);
    const placed = new Set(done.map((r) => r.name));
    const pending = all.filter((t) => !placed.has(t));
    if (pending.length === 0) return [];
    // Distributing tables that reference one another in one transaction needs Citus to use one
    // connection per node.
    await sql`set local citus.multi_shard_modify_mode to 'sequential'`.execute(trx);
    const { rows: keys } = await sql<{ tbl: string; name: string; def: string }>`
      select conrelid::regclass::text as tbl, conname as name, pg_get_constraintdef(oid) as def
      from pg_constraint
      where contype = 'f' and conrelid::regclass::text = any(${all})`.execute(trx);
    for (const k of keys) {
      await sql`alter table ${sql.id(k.tbl)} drop constraint ${sql.id(k.name)}`.execute(trx);
    }
    const did: string[] = [];
    for (const t of REFERENCE_TABLES) {
      if (placed.has(t)) continue;
      await sql`select create_reference_table(${t})`.execute(trx);
      did.push(`citus: ${t} is a reference table`);
    }
    const [anchor] = USER_TABLES;
    for (const t of USER_TABLES) {
      if (placed.has(t)) continue;
      const colocate = t === anchor ? "none" : anchor;
      await sql`select create_distributed_table(${t}, 'user_id', colocate_with => ${colocate})`.execute(trx);
      did.push(`citus: ${t} is distributed by user_id${t === anchor ? "" : `, co-located with ${anchor}`}`);
    }
    for (const [t, column] of Object.entries(KEYED_TABLES)) {
      if (placed.has(t)) continue;
      await sql`select create_distributed_table(${t}, ${column}, colocate_with => 'none')`.execute(trx);
      did.push(`citus: ${t} is distributed by ${column}`);
    }
    for (const k of keys) {
      await sql`alter table ${sql.id(k.tbl)} add constraint ${sql.id(k.name)} ${sql.raw(k.def)}`.execute(trx);
    }
    return did;
  });
}
