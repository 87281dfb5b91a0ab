import type { Tx } from "../store/transaction.js";

/**
 * Takes the user's feed lock: every transaction that changes a user's rows or counters calls
 * this first, so per-user writes are serialised, counters stay exact, and ids of one user's rows
 * are assigned in commit order (what Last-Event-ID resumption relies on). On SQLite the
 * transaction already holds the database's write lock (`BEGIN IMMEDIATE`).
 */
export async function lockFeed(tx: Tx, userId: number): Promise<{ version: number; mutedTypes: string[] }> {
  const query = tx.trx
    .selectFrom("feed_states")
    .select(["version", "muted_types"])
    .where("user_id", "=", userId);
  const row = await (tx.dialect === "postgres" ? query.forUpdate() : query).executeTakeFirstOrThrow(
    () => new Error(`user ${userId} has no feed state`),
  );
  return { version: row.version, mutedTypes: JSON.parse(row.muted_types) as string[] };
}

/** Records that the user's feed changed; the version only ever grows. */
export async function bumpFeedVersion(tx: Tx, userId: number): Promise<void> {
  await tx.trx
    .updateTable("feed_states")
    .set((eb) => ({ version: eb("version", "+", 1) }))
    .where("user_id", "=", userId)
    .execute();
  tx.changes.feeds.add(userId);
}
