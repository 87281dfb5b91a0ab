import type Sqlite from "better-sqlite3";
import { sql } from "kysely";
import type { Tx } from "./transaction.js";

/** The PostgreSQL types a bulk insert binds its column arrays as (for `unnest`). */
export type PgType = "bigint" | "integer" | "text";

/** A column of a bulk insert, with its PostgreSQL type. */
export interface BulkColumn<R> {
  name: keyof R & string;
  pg: PgType;
}

/**
 * The columns of a bulk insert, grouped by PostgreSQL type (the order of columns does not matter).
 *
 * @example
 * const COLUMNS = bulkColumns<NewRow>({ bigint: ["user_id", "created_at"], text: ["title"] });
 */
export function bulkColumns<R>(
  byType: Partial<Record<PgType, readonly (keyof R & string)[]>>,
): BulkColumn<R>[] {
  return Object.entries(byType).flatMap(([pg, names]) =>
    (names ?? []).map((name) => ({ name, pg: pg as PgType })),
  );
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

/**
 * Inserts many rows in few statements, without building a query object per row: on PostgreSQL
 * one `INSERT … SELECT * FROM unnest($1::type[], …)` (one bound array per column, so the
 * statement is the same whatever the row count), on SQLite a prepared single-row statement run
 * synchronously per row.
 */
export async function insertMany<R, Out = Record<string, unknown>>(
  tx: Tx,
  spec: BulkInsert<R>,
): Promise<Out[]> {
  if (spec.rows.length === 0) return [];
  if (tx.dialect === "postgres") return (await pgInsertMany<R, Out>(spec).execute(tx.trx)).rows;
  // SQLite: one prepared statement run per row on the connection this transaction holds —
  // synchronous and cheap, where building a multi-row query costs more than the inserts.
  const raw = tx.sqlite;
  if (!raw) throw new Error("insertMany on SQLite needs the store's connection");
  const text = [
    `insert into "${spec.table}" (${spec.columns.map((c) => `"${c.name}"`).join(", ")})`,
    `values (${spec.columns.map(() => "?").join(", ")})`,
    spec.skipConflictsOn ? `on conflict ("${spec.skipConflictsOn}") do nothing` : "",
    spec.returning ? `returning ${spec.returning.map((c) => `"${c}"`).join(", ")}` : "",
  ].join(" ");
  const statement = statementFor(raw, text);
  const out: Out[] = [];
  for (const row of spec.rows) {
    const values = spec.columns.map((c) => row[c.name] ?? null);
    if (!spec.returning) statement.run(values);
    else {
      const returned = statement.get(values) as Out | undefined;
      if (returned) out.push(returned);
    }
  }
  return out;
}

/**
 * {@link insertMany}'s PostgreSQL statement, `INSERT … SELECT * FROM unnest(…)`, as a query of its
 * own — or a part of a larger one (a data-modifying `WITH` whose rows later parts read).
 */
export function pgInsertMany<R, Out = Record<string, unknown>>(spec: BulkInsert<R>) {
  const names = sql.join(spec.columns.map((c) => sql.ref(c.name)));
  const arrays = spec.columns.map((c) => sql`${spec.rows.map((r) => r[c.name] ?? null)}::${sql.raw(c.pg)}[]`);
  const conflict = spec.skipConflictsOn
    ? sql` on conflict (${sql.ref(spec.skipConflictsOn)}) do nothing`
    : sql``;
  const returning = spec.returning
    ? sql` returning ${sql.join(spec.returning.map((c) => sql.ref(c)))}`
    : sql``;
  return sql<Out>`insert into ${sql.table(spec.table)} (${names}) select * from unnest(${sql.join(arrays)})${conflict}${returning}`;
}

const statements = new WeakMap<object, Map<string, Sqlite.Statement>>();

/** The embedded store's prepared statement for `text`, prepared once per connection. */
export function statementFor(db: NonNullable<Tx["sqlite"]>, text: string): Sqlite.Statement {
  let cache = statements.get(db);
  if (!cache) {
    cache = new Map();
    statements.set(db, cache);
  }
  let statement = cache.get(text);
  if (!statement) {
    statement = db.prepare(text);
    cache.set(text, statement);
  }
  return statement;
}
