import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spanningViolation } from "./single-shard-rules.js";
import { SQL_CAPTURE_ENV } from "./sql-capture.js";

/**
 * Vitest global setup: every PostgreSQL store the run's tests open records its statements
 * (sql-capture.ts); at the end, the run fails if any statement touches a per-user table without
 * naming the user (single-shard-rules.ts) — the property that keeps each user's reads and writes
 * on one node when the schema is distributed with Citus.
 */
export default function setup() {
  const dir = mkdtempSync(join(tmpdir(), "belfry-sql-"));
  process.env[SQL_CAPTURE_ENV] = dir;
  return () => {
    const statements = new Set<string>();
    for (const f of readdirSync(dir)) {
      for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
        if (line) statements.add(JSON.parse(line) as string);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    const bad = [...statements].flatMap((s) => {
      const why = spanningViolation(s);
      return why ? [`${why}:\n  ${s}`] : [];
    });
    if (bad.length === 0) return;
    console.error(`Statements that span users:\n${bad.join("\n")}`);
    // Vitest reports an error thrown here but still exits 0: set the failure explicitly.
    process.exitCode = 1;
  };
}
