import { migrate } from "./migrate.js";
import { openStore, type Store, type StoreOptions } from "./store.js";
import { PATIENT_TIMEOUTS } from "./store-timeouts.js";

/**
 * Opens the store `url` names for serving, after migrating it on a store of its own with
 * PATIENT_TIMEOUTS: a migration may wait for another instance's (an advisory lock on PostgreSQL,
 * the write lock on SQLite) or run a long statement, which the serving bounds would cut short.
 *
 * @example
 * const store = await openMigratedStore(process.env.DATABASE_URL, { timeouts: SERVING_TIMEOUTS });
 */
export async function openMigratedStore(
  url: string | undefined,
  options: StoreOptions,
  /** Told what migrating did (migrations applied, tables distributed on Citus), when anything. */
  report?: (done: string[]) => void,
): Promise<Store> {
  if (url === "file::memory:") {
    // An in-memory database exists only on its own connection: migrate that one.
    const store = openStore(url, options);
    const done = await migrate(store);
    if (done.length > 0) report?.(done);
    return store;
  }
  const migrating = openStore(url, { ...options, timeouts: PATIENT_TIMEOUTS });
  try {
    const done = await migrate(migrating);
    if (done.length > 0) report?.(done);
  } finally {
    await migrating.close();
  }
  return openStore(url, options);
}
