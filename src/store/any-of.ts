import { type RawBuilder, type SqlBool, sql } from "kysely";
import type { Dialect } from "./store.js";

/**
 * `column` is one of `values` (whole numbers), bound as one parameter however many there are:
 * `column = any($1::bigint[])` on PostgreSQL, `column in (select value from json_each($1))` on
 * SQLite. A long `in (…)` list costs a query node and a parameter per value to build, compile
 * and send; this costs one.
 *
 * @example
 * db.selectFrom("events").selectAll().where(() => anyOf(store.dialect, "id", ids))
 */
export function anyOf(dialect: Dialect, column: string, values: readonly number[]): RawBuilder<SqlBool> {
  if (dialect === "postgres") return sql<SqlBool>`${sql.ref(column)} = any(${values}::bigint[])`;
  return sql<SqlBool>`${sql.ref(column)} in (select value from json_each(${JSON.stringify(values)}))`;
}
