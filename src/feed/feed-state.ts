import { sql, type Transaction } from "kysely";
import { lockSharded } from "../store/for-update.js";
import { prepared } from "../store/prepared.js";
import type { Database } from "../store/schema.js";
import type { Executor } from "../store/store.js";
import type { Tx } from "../store/transaction.js";

/**
 * A user's feed state (`feed_states`): the version every feed change bumps, the muted types, the
 * mark-all-read boundary and the newest row id. This module is the only one that creates,
 * locks or changes it; the feed's reads of it go through here too.
 */

/** A user's feed state, as read under the feed lock. */
export interface FeedState {
  version: number;
  mutedTypes: string[];
  readThroughId: number;
  lastId: number;
}

/** Gives a new user an empty feed, in the transaction that creates the user. */
export async function createFeedState(trx: Transaction<Database>, userId: number): Promise<void> {
  await trx
    .insertInto("feed_states")
    .values({ user_id: userId, version: 0, muted_types: "[]", read_through_id: 0, last_id: 0 })
    .execute();
}

/**
 * Takes the user's feed lock: every transaction that changes a user's rows or counters, or must
 * not interleave with such a change, calls this first, so per-user writes are serialised,
 * counters stay exact, and ids of one user's rows are assigned in commit order (what
 * Last-Event-ID resumption and mark-all-read's `last_id` rely on). On SQLite the transaction
 * already holds the database's write lock (`BEGIN IMMEDIATE`).
 */
export async function lockFeed(tx: Tx, userId: number): Promise<FeedState> {
  const state = (await lockFeeds(tx, [userId])).get(userId);
  if (!state) throw new Error(`user ${userId} has no feed state`);
  return state;
}

/**
 * {@link lockFeed} for several users at once, taken in one order every writer uses (ascending
 * users; on Citus, shard by shard).
 */
export async function lockFeeds(tx: Tx, userIds: number[]): Promise<Map<number, FeedState>> {
  const rows = await lockSharded(tx, "feed_states", userIds, (some) =>
    tx.trx
      .selectFrom("feed_states")
      .select(["user_id", "version", "muted_types", "read_through_id", "last_id"])
      .where("user_id", "in", some)
      .orderBy("user_id"),
  );
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
 * with it: the read-through id after a mark-all-read. Announces the change after commit.
 */
export async function bumpFeedVersion(
  tx: Tx,
  userId: number,
  also: { read_through_id?: number } = {},
): Promise<void> {
  await tx.trx
    .updateTable("feed_states")
    .set((eb) => ({ version: eb("version", "+", 1), ...also }))
    .where("user_id", "=", userId)
    .execute();
  tx.changes.feeds.add(userId);
}

/**
 * {@link bumpFeedVersion} for every user who got rows, with each one's newest row id, in one
 * statement whatever the number of users.
 */
export async function bumpFeedVersions(tx: Tx, newestIds: ReadonlyMap<number, number>): Promise<void> {
  if (newestIds.size === 0) return;
  const changed = [...newestIds.entries()];
  // A searched CASE: Citus mis-deparses the simple form (`case user_id when $1`) with parameters.
  const newest = sql<number>`case ${sql.join(
    changed.map(([userId, id]) => sql`when user_id = ${userId} then cast(${id} as bigint)`),
    sql` `,
  )} end`;
  await tx.trx
    .updateTable("feed_states")
    .set((eb) => ({ version: eb("version", "+", 1), last_id: newest }))
    .where(
      "user_id",
      "in",
      changed.map(([userId]) => userId),
    )
    .execute();
  for (const [userId] of changed) tx.changes.feeds.add(userId);
}

/**
 * {@link bumpFeedVersions} as a part of a larger PostgreSQL statement: `newRows` names an
 * earlier part of the same `WITH` that returned the new rows' `id` and `user_id`. The caller
 * records the users in `tx.changes.feeds`.
 */
export const bumpFeedVersionsFrom = (newRows: string) =>
  sql`update "feed_states" as "s" set "version" = "s"."version" + 1, "last_id" = "m"."newest"
    from (select "user_id", max("id") as "newest" from ${sql.table(newRows)} group by "user_id") as "m"
    where "s"."user_id" = "m"."user_id"`;

/** The types the user has muted. */
export async function readMutedTypes(db: Executor, userId: number): Promise<string[]> {
  const row = await db
    .selectFrom("feed_states")
    .select("muted_types")
    .where("user_id", "=", userId)
    .executeTakeFirstOrThrow();
  return JSON.parse(row.muted_types) as string[];
}

/** Replaces the types the user has muted (rows added from now on honour it). */
export async function writeMutedTypes(db: Executor, userId: number, muted: readonly string[]): Promise<void> {
  await db
    .updateTable("feed_states")
    .set({ muted_types: JSON.stringify(muted) })
    .where("user_id", "=", userId)
    .execute();
}

/** Version, read-through id, newest id and counts (of one type, or all) of a user's feed. */
export interface FeedSummary {
  version: number;
  readThroughId: number;
  lastId: number;
  total: number;
  unread: number;
}

const summaryQuery = (db: Executor, userId: number, type?: string) =>
  db
    .selectFrom("feed_states as s")
    .leftJoin("feed_counters as c", (join) => {
      const on = join.onRef("c.user_id", "=", "s.user_id");
      return type === undefined ? on : on.on("c.type", "=", type);
    })
    .select(["s.version", "s.read_through_id", "s.last_id", "c.total", "c.unread"])
    .where("s.user_id", "=", userId);
const summaryOfAll = prepared((db, userId: number) => summaryQuery(db, userId));
const summaryOfType = prepared((db, userId: number, type: string) => summaryQuery(db, userId, type));

/** {@link FeedSummary} in one query, from the state and the kept counters (one row per feed type). */
export async function readFeedSummary(db: Executor, userId: number, type?: string): Promise<FeedSummary> {
  return toSummary(
    userId,
    type === undefined ? await summaryOfAll(db, userId) : await summaryOfType(db, userId, type),
  );
}

/** {@link readFeedSummary} at once, where the store can read at once (see `Prepared.now`). */
export function readFeedSummaryNow(db: Executor, userId: number, type?: string): FeedSummary | undefined {
  const rows = type === undefined ? summaryOfAll.now(db, userId) : summaryOfType.now(db, userId, type);
  return rows && toSummary(userId, rows);
}

type SummaryRow = Awaited<ReturnType<typeof summaryOfAll>>[number];

function toSummary(userId: number, rows: SummaryRow[]): FeedSummary {
  const first = rows[0];
  if (!first) throw new Error(`user ${userId} has no feed state`);
  return {
    version: first.version,
    readThroughId: first.read_through_id,
    lastId: first.last_id,
    total: rows.reduce((sum, r) => sum + (r.total ?? 0), 0),
    unread: rows.reduce((sum, r) => sum + (r.unread ?? 0), 0),
  };
}

/**
 * {@link bumpFeedVersion} for several users whose rows changed without a new newest row (retention
 * deleted some), in one statement.
 */
export async function bumpFeedVersionsOf(tx: Tx, userIds: readonly number[]): Promise<void> {
  if (userIds.length === 0) return;
  await tx.trx
    .updateTable("feed_states")
    .set((eb) => ({ version: eb("version", "+", 1) }))
    .where("user_id", "in", userIds)
    .execute();
  for (const userId of userIds) tx.changes.feeds.add(userId);
}
