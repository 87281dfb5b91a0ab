import type { SelectQueryBuilder } from "kysely";
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
 * dialects apart for row locks, so callers never test the dialect. Outside a transaction (pass
 * the store), the lock lasts as long as the one statement the query is part of.
 *
 * @example
 * const row = await forUpdate(tx, tx.trx.selectFrom("users").selectAll().where("id", "=", id))
 *   .executeTakeFirst();
 */
export function forUpdate<DB, TB extends keyof DB, O>(
  tx: Pick<Tx, "dialect">,
  query: SelectQueryBuilder<DB, TB, O>,
  { strength = "update", skipLocked = false }: RowLockOptions = {},
): SelectQueryBuilder<DB, TB, O> {
  if (tx.dialect !== "postgres") return query;
  const locked = strength === "update" ? query.forUpdate() : query.forNoKeyUpdate();
  return skipLocked ? locked.skipLocked() : locked;
}
