import type { Executor } from "../store/store.js";
import type { Tx } from "../store/transaction.js";
import { bumpFeedVersionsOf, lockFeeds } from "./feed-state.js";

/**
 * Retention's side of the feed: deletes feed rows older than a cutoff, a batch at a time, keeping
 * the counters, the read marks and the feed versions exact — the feed's one delete operation.
 */

/**
 * Deletes up to `limit` of the oldest feed rows created before `cutoff` (unix seconds), in the
 * caller's transaction, and returns how many it deleted (0: none is left).
 *
 * Under the feed locks of the users concerned (taken in ascending order, as every feed writer
 * does), it deletes the rows, takes each deleted row's total and, if it was unread, its unread
 * count off the counters, forgets the read marks that no longer cover any remaining row, and
 * bumps the versions of the feeds that lost rows (their answers changed, so their ETags must).
 * A user's newest id (`last_id`) is kept: it names the newest id ever given, which is what
 * mark-all-read and stream resumption compare with.
 */
export async function pruneNotifications(tx: Tx, cutoff: number, limit: number): Promise<number> {
  const candidates = await tx.trx
    .selectFrom("notifications")
    .select(["id", "user_id"])
    .where("created_at", "<", cutoff)
    .orderBy("created_at")
    .limit(limit)
    .execute();
  if (candidates.length === 0) return 0;
  const users = [...new Set(candidates.map((c) => c.user_id))].sort((a, b) => a - b);
  const states = await lockFeeds(tx, users);
  // Rows may have been read (or deleted by another instance's pass) between the look and the
  // locks: what the delete returns is what the counters lose.
  const deleted = await tx.trx
    .deleteFrom("notifications")
    .where("user_id", "in", users)
    .where(
      "id",
      "in",
      candidates.map((c) => c.id),
    )
    .where("created_at", "<", cutoff)
    .returning(["id", "user_id", "type", "read_at"])
    .execute();
  if (deleted.length === 0) return 0;

  const counts = new Map<string, { user_id: number; type: string; total: number; unread: number }>();
  for (const r of deleted) {
    const key = `${r.user_id} ${r.type}`;
    const c = counts.get(key) ?? { user_id: r.user_id, type: r.type, total: 0, unread: 0 };
    c.total++;
    const readThroughId = states.get(r.user_id)?.readThroughId ?? 0;
    if (r.read_at === null && r.id > readThroughId) c.unread++;
    counts.set(key, c);
  }
  // In (user, type) order, the order every writer of several counters follows.
  const sorted = [...counts.values()].sort((a, b) => a.user_id - b.user_id || a.type.localeCompare(b.type));
  for (const c of sorted) {
    await tx.trx
      .updateTable("feed_counters")
      .set((eb) => ({ total: eb("total", "-", c.total), unread: eb("unread", "-", c.unread) }))
      .where("user_id", "=", c.user_id)
      .where("type", "=", c.type)
      .execute();
  }
  const losers = [...new Set(deleted.map((r) => r.user_id))].sort((a, b) => a - b);
  // A mark that covers no remaining row of its user can never be asked for again: rows added
  // later have ids above every mark.
  await tx.trx
    .deleteFrom("feed_read_marks")
    .where("user_id", "in", losers)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom("notifications as n")
            .select("n.id")
            .whereRef("n.user_id", "=", "feed_read_marks.user_id")
            .whereRef("n.id", "<=", "feed_read_marks.max_id"),
        ),
      ),
    )
    .execute();
  await bumpFeedVersionsOf(tx, losers);
  return deleted.length;
}

/** Which of `eventIds` still have feed rows (retention keeps those events). */
export async function eventsWithNotifications(
  db: Executor,
  eventIds: readonly number[],
): Promise<Set<number>> {
  if (eventIds.length === 0) return new Set();
  const rows = await db
    .selectFrom("notifications")
    .select("event_id")
    .distinct()
    .where("event_id", "in", eventIds)
    .execute();
  return new Set(rows.map((r) => r.event_id));
}
