import type { Tx } from "../store/transaction.js";

/** A user's feed state, as read under the feed lock. */
export interface FeedState {
  version: number;
  mutedTypes: string[];
  readThroughId: number;
  lastId: number;
}

/**
 * Takes the user's feed lock: every transaction that changes a user's rows or counters calls
 * this first, so per-user writes are serialised, counters stay exact, and ids of one user's rows
 * are assigned in commit order (what Last-Event-ID resumption and mark-all-read's `last_id` rely
 * on). On SQLite the transaction already holds the database's write lock (`BEGIN IMMEDIATE`).
 */
export async function lockFeed(tx: Tx, userId: number): Promise<FeedState> {
  const state = (await lockFeeds(tx, [userId])).get(userId);
  if (!state) throw new Error(`user ${userId} has no feed state`);
  return state;
}

/** {@link lockFeed} for several users at once, taken in ascending user order as every writer does. */
export async function lockFeeds(tx: Tx, userIds: number[]): Promise<Map<number, FeedState>> {
  const query = tx.trx
    .selectFrom("feed_states")
    .select(["user_id", "version", "muted_types", "read_through_id", "last_id"])
    .where("user_id", "in", userIds)
    .orderBy("user_id");
  const rows = await (tx.dialect === "postgres" ? query.forUpdate() : query).execute();
  return new Map(
    rows.map((row) => [
      row.user_id,
      {
        version: row.version,
        mutedTypes: JSON.parse(row.muted_types) as string[],
        readThroughId: row.read_through_id,
        lastId: row.last_id,
      },
    ]),
  );
}

/**
 * Records that the user's feed changed (the version only ever grows), and what else changed
 * with it: the newest row id after an insert, the read-through id after a mark-all-read.
 */
export async function bumpFeedVersion(
  tx: Tx,
  userId: number,
  also: { last_id?: number; read_through_id?: number } = {},
): Promise<void> {
  await tx.trx
    .updateTable("feed_states")
    .set((eb) => ({ version: eb("version", "+", 1), ...also }))
    .where("user_id", "=", userId)
    .execute();
  tx.changes.feeds.add(userId);
}
