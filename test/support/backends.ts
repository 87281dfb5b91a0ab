import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { migrate } from "../../src/store/migrate.js";
import { openStore, type Store, type StoreOptions } from "../../src/store/store.js";
import { citusWorkers, createPgDatabase } from "./pg-database.js";
import { sqlCaptureLog } from "./sql-capture.js";

/**
 * The backends every store-touching suite runs on. PostgreSQL is 127.0.0.1:5432 (or
 * BELFRY_TEST_PG); each store gets a throwaway database. Under CI=true a missing PostgreSQL fails
 * the run instead of skipping it.
 */
export const PG_ADMIN_URL = process.env.BELFRY_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function postgresAnswers(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

const pgUp = await postgresAnswers();
if (!pgUp) {
  if (process.env.CI === "true")
    throw new Error(`PostgreSQL does not answer at ${PG_ADMIN_URL}; CI requires it.`);
  console.warn(`PostgreSQL does not answer at ${PG_ADMIN_URL}: the PostgreSQL suites are skipped.`);
}

/** BELFRY_TEST_PG is a Citus coordinator with workers: each test database is a cluster of its own. */
export const PG_IS_CITUS = pgUp && (await citusWorkers(PG_ADMIN_URL)).length > 0;

export type BackendName = "sqlite" | "postgres";
export const BACKENDS: BackendName[] = pgUp ? ["sqlite", "postgres"] : ["sqlite"];

/** A migrated store on a fresh database, and how to throw it away. */
export interface TestStore {
  store: Store;
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database URL for `backend` (not migrated, nothing open). */
export async function freshDatabase(backend: BackendName): Promise<{ url: string; drop(): Promise<void> }> {
  if (backend === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "belfry-test-"));
    return {
      url: `file:${join(dir, "belfry.db")}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  return createPgDatabase(PG_ADMIN_URL);
}

export async function openTestStore(backend: BackendName, options: StoreOptions = {}): Promise<TestStore> {
  const db = await freshDatabase(backend);
  const capture = backend === "postgres" ? sqlCaptureLog() : undefined;
  const store = openStore(db.url, { ...(capture && { log: capture }), ...options });
  await migrate(store);
  return {
    store,
    url: db.url,
    drop: async () => {
      await store.close();
      await db.drop();
    },
  };
}
