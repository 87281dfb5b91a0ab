import { Type } from "typebox";
import { FeedTypeName } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { notFound } from "../errors.js";
import { GroupCommit } from "../store/group-commit.js";
import { type Tx, transact } from "../store/transaction.js";
import { toIso } from "../time.js";
import { bumpFeedVersion, lockFeed } from "./feed-state.js";
import { effectiveReadAt } from "./read-state.js";

export const MarkReadResult = Type.Object(
  {
    id: Type.Integer(),
    type: FeedTypeName,
    read_at: Type.String({ description: "When the row was first read (RFC 3339 UTC)." }),
  },
  { examples: [{ id: 1, type: "system.payment.received", read_at: "2026-05-22T08:09:12Z" }] },
);
export const MarkAllReadResult = Type.Object(
  { marked_read: Type.Integer({ description: "Rows this call flipped to read." }) },
  { examples: [{ marked_read: 4 }] },
);

/** The one 404 of mark-read, whether the row is another user's, missing, or the id malformed. */
export const NOT_YOURS = "No such notification.";
const notYours = () => notFound(NOT_YOURS);

/**
 * Marks one of the user's rows read. Idempotent: a row already read — by its own mark or by a
 * mark-all-read — keeps its original `read_at`. Another user's row, or none, is a 404 that says
 * no more than that, decided before any write. When this resolves the mark is committed.
 */
export async function markRead(
  deps: Deps,
  userId: number,
  id: number,
): Promise<{ id: number; type: string; read_at: string }> {
  const { store } = deps;
  const find = () =>
    store.db
      .selectFrom("notifications")
      .select((eb) => ["type", effectiveReadAt(eb, undefined, userId)])
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .executeTakeFirst();
  const row = await find();
  if (!row) throw notYours();
  if (row.read_at !== null) return { id, type: row.type, read_at: toIso(row.read_at) };
  const now = deps.clock();
  const mark: Mark = { userId, id, type: row.type, at: now };
  const flipped = await gathererOf(deps).submit(mark);
  if (flipped) return { id, type: row.type, read_at: toIso(now) };
  const again = await find();
  if (!again?.read_at) throw notYours();
  return { id, type: again.type, read_at: toIso(again.read_at) };
}

/** A row that was unread when its request looked: whose, which, its type, and when it is read. */
interface Mark {
  userId: number;
  id: number;
  type: string;
  at: number;
}

/**
 * Flips one row to read under its user's feed lock, with its counter and the feed's version.
 * False when it is read already (by a mark-all-read, or another mark-read meanwhile).
 */
async function flip(tx: Tx, { userId, id, type, at }: Mark): Promise<boolean> {
  const { readThroughId } = await lockFeed(tx, userId);
  if (id <= readThroughId) return false; // a mark-all-read got there first
  const result = await tx.trx
    .updateTable("notifications")
    .set({ read_at: at })
    .where("id", "=", id)
    .where("user_id", "=", userId)
    .where("read_at", "is", null)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) return false; // marked read by someone else meanwhile
  await tx.trx
    .updateTable("feed_counters")
    .set((eb) => ({ unread: eb("unread", "-", 1) }))
    .where("user_id", "=", userId)
    .where("type", "=", type)
    .execute();
  await bumpFeedVersion(tx, userId);
  const reads = tx.changes.reads.get(userId);
  if (reads !== "all") tx.changes.reads.set(userId, [...(reads ?? []), id]);
  return true;
}

/**
 * Each Deps' gatherer of mark-reads. On SQLite concurrent marks share a transaction and its
 * commit (group commit); on PostgreSQL each keeps its own, side by side on the pool, which
 * measured as fast (docs/decisions.md, "Group commit").
 */
const gatherers = new WeakMap<Deps, GroupCommit<Mark, boolean>>();

function gathererOf(deps: Deps): GroupCommit<Mark, boolean> {
  let gatherer = gatherers.get(deps);
  if (gatherer === undefined) {
    gatherer = new GroupCommit(deps.store, {
      run: flipAll,
      gatherOn: ["sqlite"],
      committed: (size) => deps.metrics.groupCommitSize.observe({ operation: "mark_read" }, size),
    });
    gatherers.set(deps, gatherer);
  }
  return gatherer;
}

/** {@link flip} for each mark, users in ascending order (the order every writer locks feeds in). */
async function flipAll(tx: Tx, marks: readonly Mark[]): Promise<boolean[]> {
  const order = marks.map((_, i) => i);
  const userOf = (i: number) => (marks[i] as Mark).userId;
  order.sort((a, b) => userOf(a) - userOf(b) || a - b);
  const flipped: boolean[] = new Array(marks.length);
  for (const i of order) flipped[i] = await flip(tx, marks[i] as Mark);
  return flipped;
}

/**
 * Marks every unread row of the user read and returns how many this call flipped — in constant
 * work whatever that number: it records a mark covering the user's rows up to the newest one,
 * and zeroes the unread counters (at most one per feed type). See read-state.ts.
 */
export async function markAllRead(deps: Deps, userId: number): Promise<{ marked_read: number }> {
  const now = deps.clock();
  const marked = await transact(deps.store, async (tx) => {
    const { lastId, readThroughId } = await lockFeed(tx, userId);
    const counters = await tx.trx
      .selectFrom("feed_counters")
      .select("unread")
      .where("user_id", "=", userId)
      .execute();
    const unread = counters.reduce((sum, c) => sum + c.unread, 0);
    if (unread === 0 || lastId <= readThroughId) return 0;
    await tx.trx.insertInto("feed_read_marks").values({ user_id: userId, max_id: lastId, at: now }).execute();
    await tx.trx.updateTable("feed_counters").set({ unread: 0 }).where("user_id", "=", userId).execute();
    await bumpFeedVersion(tx, userId, { read_through_id: lastId });
    tx.changes.reads.set(userId, "all");
    return unread;
  });
  return { marked_read: marked };
}
