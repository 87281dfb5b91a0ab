import type { Transaction } from "kysely";
import { type Changes, emptyChanges, hasChanges } from "../bus/change-bus.js";
import type { Database } from "./schema.js";
import type { Dialect, Executor, Store } from "./store.js";

/** A transaction in progress: the query builder, the backend, and the changes it records. */
export interface Tx {
  readonly trx: Transaction<Database>;
  readonly dialect: Dialect;
  /** Each statement is a round trip to a server (see `Store.roundTrips`). */
  readonly roundTrips: boolean;
  readonly changes: Changes;
  /** The store spreads tables over nodes (see `Store.sharded`): row locks go shard by shard. */
  readonly sharded: boolean;
  /** The embedded store's connection, which this transaction holds (see `Store.sqlite`). */
  readonly sqlite?: Store["sqlite"];
}

/**
 * Runs `fn` in one transaction and, only after it commits, announces what changed on the store's
 * bus (one message per transaction, however many rows). Nothing is announced for a transaction
 * that rolls back. The caller does not wait for the announcement to reach other processes: on
 * PostgreSQL that is a round trip of its own, which a chain of transactions (group commit) would
 * otherwise pay once per link.
 */
export async function transact<T>(store: Store, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const changes = emptyChanges();
  const sharded = await store.sharded();
  const result = await store.db.transaction().execute((trx) =>
    fn({
      trx,
      dialect: store.dialect,
      roundTrips: store.roundTrips,
      changes,
      sharded,
      sqlite: store.sqlite,
    }),
  );
  if (hasChanges(changes)) store.bus.publish(changes);
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
