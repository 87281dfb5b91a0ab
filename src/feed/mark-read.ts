import { Type } from "typebox";
import type { Deps } from "../deps.js";
import { notFound } from "../errors.js";
import { transact } from "../store/transaction.js";
import { toIso } from "../time.js";
import { bumpFeedVersion, lockFeed } from "./feed-lock.js";

export const MarkReadResult = Type.Object({
  id: Type.Integer(),
  type: Type.String(),
  read_at: Type.String(),
});
export const MarkAllReadResult = Type.Object({ marked_read: Type.Integer() });

/** The one 404 of mark-read, whether the row is another user's, missing, or the id malformed. */
export const NOT_YOURS = "No such notification.";
const notYours = () => notFound(NOT_YOURS);

/**
 * Marks one of the user's rows read. Idempotent: a row already read keeps its original
 * `read_at`. Another user's row, or none, is a 404 that says no more than that.
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
      .select(["id", "type", "read_at"])
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .executeTakeFirst();
  const row = await find();
  if (!row) throw notYours();
  if (row.read_at !== null) return { id, type: row.type, read_at: toIso(row.read_at) };
  const now = deps.clock();
  const readAt = await transact(store, async (tx) => {
    const { trx } = tx;
    await lockFeed(tx, userId);
    const flipped = await trx
      .updateTable("notifications")
      .set({ read_at: now })
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .where("read_at", "is", null)
      .executeTakeFirst();
    if (flipped.numUpdatedRows === 0n) return undefined; // marked read by someone else meanwhile
    await trx
      .updateTable("feed_counters")
      .set((eb) => ({ unread: eb("unread", "-", 1) }))
      .where("user_id", "=", userId)
      .where("type", "=", row.type)
      .execute();
    await bumpFeedVersion(tx, userId);
    return now;
  });
  if (readAt !== undefined) return { id, type: row.type, read_at: toIso(readAt) };
  const again = await find();
  if (!again?.read_at) throw notYours();
  return { id, type: again.type, read_at: toIso(again.read_at) };
}

/** Marks every unread row of the user read; returns how many this call flipped. */
export async function markAllRead(deps: Deps, userId: number): Promise<{ marked_read: number }> {
  const { store } = deps;
  const now = deps.clock();
  const marked = await transact(store, async (tx) => {
    const { trx } = tx;
    await lockFeed(tx, userId);
    const result = await trx
      .updateTable("notifications")
      .set({ read_at: now })
      .where("user_id", "=", userId)
      .where("read_at", "is", null)
      .executeTakeFirst();
    const n = Number(result.numUpdatedRows);
    if (n > 0) {
      await trx.updateTable("feed_counters").set({ unread: 0 }).where("user_id", "=", userId).execute();
      await bumpFeedVersion(tx, userId);
    }
    return n;
  });
  return { marked_read: marked };
}
