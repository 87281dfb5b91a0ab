import { type RawBuilder, type SelectQueryBuilder, type SqlBool, sql } from "kysely";
import type { Tx } from "./transaction.js";

export interface RowLockOptions {
  /**
   * `"no key update"`: the weaker lock, which does not block inserts of rows that reference the
   * locked one (a foreign key check takes `key share`). Default: `"update"`.
   */
  strength?: "update" | "no key update";
  /** Skip rows another transaction has locked instead of waiting for them (queue claims). */
  skipLocked?: boolean;
}

/**
 * Locks the rows `query` selects until the transaction ends, on backends that lock rows: on
 * PostgreSQL it adds `FOR UPDATE` (or `FOR NO KEY UPDATE`, `SKIP LOCKED`); on SQLite the query
 * is unchanged, since a write transaction there already holds the database's write lock
 * (`BEGIN IMMEDIATE`) and no other writer can touch the rows. The one place that tells the
 * dialects apart for row locks, so callers never test the dialect.
 *
 * @example
 * const row = await forUpdate(tx, tx.trx.selectFrom("users").selectAll().where("id", "=", id))
 *   .executeTakeFirst();
 */
export function forUpdate<DB, TB extends keyof DB, O>(
  tx: Tx,
  query: SelectQueryBuilder<DB, TB, O>,
  { strength = "update", skipLocked = false }: RowLockOptions = {},
): SelectQueryBuilder<DB, TB, O> {
  if (tx.dialect !== "postgres") return query;
  const locked = strength === "update" ? query.forUpdate() : query.forNoKeyUpdate();
  return skipLocked ? locked.skipLocked() : locked;
}

/**
 * Locks the rows of several keys, in the order given, until the transaction ends: on PostgreSQL
 * one locking statement per key (`select([key])` with `FOR UPDATE`), so that every writer that
 * locks several rows takes them in one order (no deadlock), and each statement stays on one
 * shard on Citus; on SQLite, one plain statement for every key (`select(keys)`), since the
 * transaction already holds the database's write lock. Returns the rows read.
 *
 * @example
 * const rows = await lockEach(tx, ids, (some) => tx.trx.selectFrom("orgs").selectAll().where("id", "in", some));
 */
export async function lockEach<K, DB, TB extends keyof DB, O>(
  tx: Tx,
  keys: readonly K[],
  select: (keys: readonly K[]) => SelectQueryBuilder<DB, TB, O>,
): Promise<O[]> {
  if (keys.length === 0) return [];
  if (tx.dialect !== "postgres") return select(keys).execute();
  const rows: O[] = [];
  for (const key of keys) rows.push(...(await forUpdate(tx, select([key])).execute()));
  return rows;
}

/**
 * Locks the rows of many keys of one sharded table (`table` distributed by the keys' column)
 * until the transaction ends, in one order every such writer uses. On plain PostgreSQL one
 * statement (`select(keys)` with `FOR UPDATE`; `select` orders by the key). On Citus, which
 * locks rows only in a statement on one shard, the keys are grouped by shard first: one locking
 * statement per shard, shards in ascending order, keys ascending within each. On SQLite a plain
 * statement (the transaction holds the database's write lock). Returns the rows read.
 *
 * @example
 * const rows = await lockSharded(tx, "feed_states", userIds, (some) =>
 *   tx.trx.selectFrom("feed_states").selectAll().where("user_id", "in", some).orderBy("user_id"));
 */
export async function lockSharded<DB, TB extends keyof DB, O>(
  tx: Tx,
  table: string,
  keys: readonly number[],
  select: (keys: readonly number[]) => SelectQueryBuilder<DB, TB, O>,
): Promise<O[]> {
  if (keys.length === 0) return [];
  if (!tx.sharded || keys.length === 1) return forUpdate(tx, select(keys)).execute();
  const { rows: placed } = await sql<{ shard: string; key: string }>`
    select get_shard_id_for_distribution_column(${table}, k) as shard, k as key
    from unnest(${keys}::bigint[]) as k order by 1, 2`.execute(tx.trx);
  const groups = new Map<string, number[]>();
  for (const { shard, key } of placed) {
    const group = groups.get(shard);
    if (group) group.push(Number(key));
    else groups.set(shard, [Number(key)]);
  }
  const rows: O[] = [];
  for (const group of groups.values()) rows.push(...(await forUpdate(tx, select(group)).execute()));
  return rows;
}

/**
 * `column` is one of the ids `ids` selects (with the row locks `ids` takes, see forUpdate): on
 * PostgreSQL `column = any(array(…))`, which runs the selection once and then probes the key's
 * index per id — for `column in (…)` it may plan a join that reads every row of the user; on
 * SQLite `column in (…)`.
 *
 * @example
 * tx.trx.updateTable("jobs").set({ owner }).where("user_id", "=", userId)
 *   .where((eb) => amongIds(tx, "id", forUpdate(tx, due.select("id").limit(10), { skipLocked: true })))
 */
export function amongIds<DB, TB extends keyof DB>(
  tx: Tx,
  column: string,
  ids: SelectQueryBuilder<DB, TB, { id: number }>,
): RawBuilder<SqlBool> {
  if (tx.dialect === "postgres") return sql<SqlBool>`${sql.ref(column)} = any(array(${ids}))`;
  return sql<SqlBool>`${sql.ref(column)} in (${ids})`;
}
