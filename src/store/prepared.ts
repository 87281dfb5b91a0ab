import { type Compilable, CompiledQuery, type DialectAdapter } from "kysely";
import { readNow } from "./sqlite-dialect.js";
import { nameStatement } from "./statement-names.js";
import type { Executor } from "./store.js";

/**
 * A query whose SQL is built and compiled once per backend; each call only binds new values.
 * Kysely builds and compiles a query on every call, which on the hottest reads (key lookup,
 * unread count, page 1) cost more CPU than the database did. `build` is called once with
 * stand-ins for the arguments; the SQL it compiles to, and where each stand-in landed among the
 * parameters, are kept. The shape must not depend on the arguments' values (write one prepared
 * query per shape).
 *
 * @example
 * const keyByHash = prepared((db, hash: string) =>
 *   db.selectFrom("api_keys").selectAll().where("secret_hash", "=", hash));
 * const [key] = await keyByHash(store.db, "ab12…");
 */
export function prepared<A extends unknown[], R>(
  build: (db: Executor, ...args: A) => Compilable<R>,
): Prepared<A, R> {
  const compiled = new WeakMap<DialectAdapter, { sql: string; slots: ((args: A) => unknown)[] }>();
  const compile = (db: Executor, args: A) => {
    const adapter = db.getExecutor().adapter;
    let query = compiled.get(adapter);
    if (query === undefined) {
      const standIns = args.map((_, i) => new StandIn(i)) as unknown as A;
      const { sql, parameters } = build(db, ...standIns).compile();
      query = { sql, slots: parameters.map((p) => (p instanceof StandIn ? (a: A) => a[p.index] : () => p)) };
      compiled.set(adapter, query);
      nameStatement(sql);
    }
    const parameters = query.slots.map((slot) => slot(args));
    return { adapter, query: CompiledQuery.raw(query.sql, parameters) };
  };
  const now = (db: Executor, ...args: A): R[] | undefined => {
    if (db.isTransaction) return undefined;
    const { adapter, query } = compile(db, args);
    return readNow<R>(adapter, query);
  };
  const run = async (db: Executor, ...args: A): Promise<R[]> => {
    const { adapter, query } = compile(db, args);
    // The embedded store answers a read outside a transaction at once when it is free.
    const rows = db.isTransaction ? undefined : readNow<R>(adapter, query);
    return rows ?? (await db.executeQuery<R>(query)).rows;
  };
  return Object.assign(run, { now });
}

/** A {@link prepared} query: call it to run it. */
export interface Prepared<A extends unknown[], R> {
  (db: Executor, ...args: A): Promise<R[]>;
  /**
   * Runs it at once, synchronously, if the store can (the embedded store, its connection free,
   * outside a transaction), else undefined. Several reads made this way back to back see one
   * state of the database: nothing can write in between.
   */
  now(db: Executor, ...args: A): R[] | undefined;
}

class StandIn {
  constructor(readonly index: number) {}
}
