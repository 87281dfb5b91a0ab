import type { Expression, ExpressionBuilder, SelectQueryBuilder } from "kysely";
import type { Database } from "../store/schema.js";

/**
 * Whether a row is read, after O(1) mark-all-read (migration 0003): its own `read_at` is set, or
 * its id is at or below the user's `read_through_id`. These helpers put that rule into queries.
 */

export type Notifications = ExpressionBuilder<Database, "notifications">;

/**
 * A row's read time: its own `read_at`, else the time of the first mark-all-read that covers it
 * (one primary-key probe per returned row at or below `readThroughId`, when that is given: a
 * number, or the column it is read from in the same statement), else null. `owner`, the rows'
 * user when the query knows it, names the user in the probe too, so that on Citus the whole
 * statement plans for that user's shard alone.
 */
export function effectiveReadAt(
  eb: Notifications,
  readThroughId?: number | Expression<number>,
  owner?: number,
) {
  const mark = eb
    .selectFrom("feed_read_marks as m")
    .select("m.at")
    .whereRef("m.user_id", "=", "notifications.user_id")
    .$if(owner !== undefined, (q) => q.where("m.user_id", "=", owner as number))
    .whereRef("m.max_id", ">=", "notifications.id")
    .orderBy("m.max_id")
    .limit(1);
  // Knowing the user's read-through id, rows above it skip the probe.
  const covered =
    readThroughId === undefined
      ? mark
      : eb.case().when("notifications.id", "<=", readThroughId).then(mark).end();
  return eb.fn.coalesce("notifications.read_at", covered).as("read_at");
}

/**
 * Keeps read (`read = true`) or unread rows. Until the user's first mark-all-read (`marked`
 * false) the conditions are exactly the partial indexes' predicates, so those indexes serve the
 * query.
 */
export function whereRead<O>(
  query: SelectQueryBuilder<Database, "notifications", O>,
  read: boolean,
  readThroughId: number,
  marked: boolean,
): SelectQueryBuilder<Database, "notifications", O> {
  if (!marked) return query.where("read_at", read ? "is not" : "is", null);
  return read
    ? query.where((eb) => eb.or([eb("read_at", "is not", null), eb("id", "<=", readThroughId)]))
    : query.where("read_at", "is", null).where("id", ">", readThroughId);
}
