/**
 * Names for the SQL of prepared queries (see prepared.ts). PostgreSQL keeps a named statement
 * parsed (and, once its plans prove stable, planned) per connection, so the hot reads skip the
 * parse and plan of every call; pg-pool.ts sends these names.
 */
const names = new Map<string, string>();

/** Gives `sql` a statement name, once. */
export function nameStatement(sql: string): void {
  if (!names.has(sql)) names.set(sql, `belfry_${names.size + 1}`);
}

/** The name `sql` goes by, or undefined for SQL that is not a prepared query's. */
export const statementName = (sql: string): string | undefined => names.get(sql);
