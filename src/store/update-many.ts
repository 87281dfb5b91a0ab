import { sql } from "kysely";
import { type BulkColumn, statementFor } from "./insert-many.js";
import type { Tx } from "./transaction.js";

export interface BulkUpdate<R> {
  table: string;
  /** Columns a row must match (all of them, by equality) to be updated. */
  match: readonly BulkColumn<R>[];
  /** Columns set from each row's values. */
  set: readonly BulkColumn<R>[];
  /** Columns set to NULL in every updated row. */
  clear?: readonly string[];
  rows: readonly R[];
}

/**
 * Updates many rows, each with its own values, in one statement on PostgreSQL
 * (`UPDATE … FROM unnest($1::type[], …)`, one bound array per column; the first match column —
 * the shard key where there is one — is also bound as `= any(…)` of its distinct values, so the
 * statement names its rows' keys; repeated values there would make PostgreSQL misjudge how many
 * rows match and scan the whole table) and with one prepared statement run per
 * row on SQLite. Returns, for each row in order, whether a row matched and was updated.
 *
 * @example
 * const done = await updateMany(tx, { table: "t", match: KEY, set: VALUES, rows });
 */
export async function updateMany<R>(tx: Tx, spec: BulkUpdate<R>): Promise<boolean[]> {
  if (spec.rows.length === 0) return [];
  const columns = [...spec.match, ...spec.set];
  const [first] = spec.match;
  if (!first) throw new Error("updateMany needs a column to match rows by");
  const cleared = spec.clear ?? [];
  if (tx.dialect === "postgres") {
    const array = (c: BulkColumn<R>) => sql`${spec.rows.map((r) => r[c.name] ?? null)}::${sql.raw(c.pg)}[]`;
    const t = (name: string) => sql.ref(`t.${name}`);
    const v = (name: string) => sql.ref(`v.${name}`);
    const assignments = [
      ...spec.set.map((c) => sql`${sql.ref(c.name)} = ${v(c.name)}`),
      ...cleared.map((name) => sql`${sql.ref(name)} = null`),
    ];
    const query = sql<{ n: string }>`update ${sql.table(spec.table)} as t
      set ${sql.join(assignments)}
      from unnest(${sql.join(columns.map(array))}) with ordinality
        as v(${sql.join([...columns.map((c) => sql.ref(c.name)), sql.ref("n")])})
      where ${sql.join(
        spec.match.map((c) => sql`${t(c.name)} = ${v(c.name)}`),
        sql` and `,
      )} and ${t(first.name)} = any(${[...new Set(spec.rows.map((r) => r[first.name]))]}::${sql.raw(first.pg)}[])
      returning ${v("n")}`;
    const updated = new Set((await query.execute(tx.trx)).rows.map((r) => Number(r.n) - 1));
    return spec.rows.map((_, i) => updated.has(i));
  }
  const raw = tx.sqlite;
  if (!raw) throw new Error("updateMany on SQLite needs the store's connection");
  const text = [
    `update "${spec.table}" set ${[
      ...spec.set.map((c) => `"${c.name}" = ?`),
      ...cleared.map((name) => `"${name}" = null`),
    ].join(", ")}`,
    `where ${spec.match.map((c) => `"${c.name}" = ?`).join(" and ")}`,
  ].join(" ");
  const statement = statementFor(raw, text);
  return spec.rows.map(
    (row) => statement.run([...spec.set, ...spec.match].map((c) => row[c.name] ?? null)).changes > 0,
  );
}
