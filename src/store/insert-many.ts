import { sql } from "kysely";
import type { Tx } from "./transaction.js";

/** A column of a bulk insert, with its PostgreSQL type (for `unnest`). */
export interface BulkColumn<R> {
  name: keyof R & string;
  pg: "bigint" | "integer" | "text";
}

export interface BulkInsert<R> {
  table: string;
  columns: readonly BulkColumn<R>[];
  rows: readonly R[];
  /** `on conflict (<column>) do nothing`. */
  skipConflictsOn?: string;
  /** Columns to return for each inserted row. */
  returning?: readonly string[];
}

/** Rows per SQLite statement: far below its bound-parameter limit. */
const SQLITE_CHUNK = 500;

/**
 * Inserts many rows in few statements, without building a query object per row: on PostgreSQL
 * one `INSERT … SELECT * FROM unnest($1::type[], …)` (one bound array per column, so the
 * statement is the same whatever the row count), on SQLite multi-row VALUES in chunks. Measured
 * on 1,000-row batches this took PostgreSQL inserts from ~58 µs to a few µs per row.
 */
export async function insertMany<R, Out = Record<string, unknown>>(
  tx: Tx,
  spec: BulkInsert<R>,
): Promise<Out[]> {
  if (spec.rows.length === 0) return [];
  const names = sql.join(spec.columns.map((c) => sql.ref(c.name)));
  const conflict = spec.skipConflictsOn
    ? sql` on conflict (${sql.ref(spec.skipConflictsOn)}) do nothing`
    : sql``;
  const returning = spec.returning
    ? sql` returning ${sql.join(spec.returning.map((c) => sql.ref(c)))}`
    : sql``;
  if (tx.dialect === "postgres") {
    const arrays = spec.columns.map(
      (c) => sql`${spec.rows.map((r) => r[c.name] ?? null)}::${sql.raw(c.pg)}[]`,
    );
    const query = sql<Out>`insert into ${sql.table(spec.table)} (${names}) select * from unnest(${sql.join(arrays)})${conflict}${returning}`;
    return (await query.execute(tx.trx)).rows;
  }
  const out: Out[] = [];
  for (let i = 0; i < spec.rows.length; i += SQLITE_CHUNK) {
    const values = spec.rows
      .slice(i, i + SQLITE_CHUNK)
      .map((r) => sql`(${sql.join(spec.columns.map((c) => r[c.name] ?? null))})`);
    const query = sql<Out>`insert into ${sql.table(spec.table)} (${names}) values ${sql.join(values)}${conflict}${returning}`;
    out.push(...(await query.execute(tx.trx)).rows);
  }
  return out;
}
