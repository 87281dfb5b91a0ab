import type { Transaction } from "kysely";
import type { Database } from "./schema.js";
import type { Dialect, Executor, Store } from "./store.js";

/** What a committed transaction changed, for whoever pushes or delivers it. */
export interface Changes {
  /** Users whose feed (rows, counts) changed. */
  readonly feeds: Set<number>;
  /** Whether webhook deliveries became due. */
  deliveries: boolean;
}

/** A transaction in progress: the query builder, the backend, and the changes it records. */
export interface Tx {
  readonly trx: Transaction<Database>;
  readonly dialect: Dialect;
  readonly changes: Changes;
}

/**
 * Runs `fn` in one transaction and, only after it commits, tells the store's subscribers what
 * changed. Nothing is announced for a transaction that rolls back.
 */
export async function transact<T>(store: Store, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const changes: Changes = { feeds: new Set(), deliveries: false };
  const result = await store.db.transaction().execute((trx) => fn({ trx, dialect: store.dialect, changes }));
  if (changes.feeds.size > 0 || changes.deliveries) store.publish(changes);
  return result;
}

/**
 * Runs several reads against one consistent view: a read-only REPEATABLE READ transaction on
 * PostgreSQL; on SQLite, the single connection held throughout, so no write of this process lands
 * in between.
 */
export function snapshot<T>(store: Store, fn: (db: Executor) => Promise<T>): Promise<T> {
  if (store.dialect === "postgres") {
    return store.db.transaction().setIsolationLevel("repeatable read").setAccessMode("read only").execute(fn);
  }
  return store.db.connection().execute(fn);
}
