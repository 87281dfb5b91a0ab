import { Type } from "typebox";
import { FeedTypeName } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { notFound } from "../errors.js";
import { transact } from "../store/transaction.js";
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
 * no more than that.
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
      .select((eb) => ["type", effectiveReadAt(eb)])
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .executeTakeFirst();
  const row = await find();
  if (!row) throw notYours();
  if (row.read_at !== null) return { id, type: row.type, read_at: toIso(row.read_at) };
  const now = deps.clock();
  const flipped = await transact(store, async (tx) => {
    const { readThroughId } = await lockFeed(tx, userId);
    if (id <= readThroughId) return false; // a mark-all-read got there first
    const result = await tx.trx
      .updateTable("notifications")
      .set({ read_at: now })
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .where("read_at", "is", null)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) return false; // marked read by someone else meanwhile
    await tx.trx
      .updateTable("feed_counters")
      .set((eb) => ({ unread: eb("unread", "-", 1) }))
      .where("user_id", "=", userId)
      .where("type", "=", row.type)
      .execute();
    await bumpFeedVersion(tx, userId);
    const reads = tx.changes.reads.get(userId);
    if (reads !== "all") tx.changes.reads.set(userId, [...(reads ?? []), id]);
    return true;
  });
  if (flipped) return { id, type: row.type, read_at: toIso(now) };
  const again = await find();
  if (!again?.read_at) throw notYours();
  return { id, type: again.type, read_at: toIso(again.read_at) };
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
