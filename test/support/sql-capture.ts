import { appendFileSync } from "node:fs";
import { join } from "node:path";
import type { LogConfig } from "kysely";

/**
 * Where PostgreSQL test stores record every statement they run (one file per test process), set
 * by the global setup (sql-capture-setup.ts) for the whole run; the setup's teardown checks them.
 */
export const SQL_CAPTURE_ENV = "BELFRY_TEST_SQL_CAPTURE";

/** A Kysely log hook that appends each statement's text to this process's capture file, or undefined. */
export function sqlCaptureLog(): LogConfig | undefined {
  const dir = process.env[SQL_CAPTURE_ENV];
  if (!dir) return undefined;
  const file = join(dir, `${process.pid}.jsonl`);
  return (event) => appendFileSync(file, `${JSON.stringify(event.query.sql)}\n`);
}
