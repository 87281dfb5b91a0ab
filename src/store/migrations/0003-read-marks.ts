import { type Kysely, sql } from "kysely";

/**
 * O(1) mark-all-read. Instead of updating every unread row, mark-all-read records a mark: "every
 * row of this user up to id `max_id` that is still unread was read at `at`". A row is read when
 * its own `read_at` is set or its id is at or below the user's `read_through_id`; its read time is
 * then its own, or the first mark that covers it. `last_id` (the user's newest row id) is what a
 * mark covers, kept beside the feed version so no query has to look for it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("feed_states")
    .addColumn("read_through_id", "bigint", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable("feed_states")
    .addColumn("last_id", "bigint", (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`
    update feed_states set last_id = coalesce(
      (select max(id) from notifications where notifications.user_id = feed_states.user_id), 0)`.execute(db);
  await db.schema
    .createTable("feed_read_marks")
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("max_id", "bigint", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("feed_read_marks_pk", ["user_id", "max_id"])
    .execute();
}
