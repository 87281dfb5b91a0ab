import type { Compilable } from "kysely";
import { prepared } from "../store/prepared.js";
import type { Executor } from "../store/store.js";

/**
 * A read that joins a credential to its user's feed state, prepared in the two shapes a store
 * needs: found by the credential alone, and also by its owner (`owner` defined: the build adds
 * `s.user_id = owner`). On Citus the credential tables are copied to every node while the feed
 * state is sharded by user, so the join found by the credential alone would ask every shard;
 * with the owner, read first from the credential's own table, it runs on one.
 */
export function routable<A extends unknown[], R>(
  build: (db: Executor, owner: number | undefined, ...args: A) => Compilable<R>,
): (db: Executor, owner: number | undefined, ...args: A) => Promise<R[]> {
  const plain = prepared((db, ...args: A) => build(db, undefined, ...args));
  const routed = prepared((db, owner: number, ...args: A) => build(db, owner, ...args));
  return (db, owner, ...args) => (owner === undefined ? plain(db, ...args) : routed(db, owner, ...args));
}
