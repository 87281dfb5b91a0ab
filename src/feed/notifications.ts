import { type Static, Type } from "typebox";
import { FEED_TYPES } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { invalidRequest } from "../errors.js";
import { booleanParam, pageParams, type Query, singleParam } from "../query-params.js";
import type { NotificationRow } from "../store/schema.js";
import type { Executor } from "../store/store.js";
import { snapshot } from "../store/transaction.js";
import { toIso, toIsoOrNull } from "../time.js";

export const Notification = Type.Object({
  id: Type.Integer(),
  type: Type.String(),
  title: Type.String(),
  body: Type.String(),
  link: Type.Union([Type.String(), Type.Null()]),
  read_at: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
});
export type Notification = Static<typeof Notification>;

export const NotificationPage = Type.Object({
  items: Type.Array(Notification),
  total: Type.Integer(),
  page: Type.Integer(),
  page_size: Type.Integer(),
});
export type NotificationPage = Static<typeof NotificationPage>;

export const UnreadCount = Type.Object({ count: Type.Integer() });

/** The list filters of SPEC §3, parsed. `read`: true → read rows only, false → unread only. */
export interface FeedFilter {
  read?: boolean;
  type?: string;
  page: number;
  pageSize: number;
}

/**
 * Parses the list query string by the SPEC's rules (see `query-params.ts`); `type` must be a feed
 * type and `read`/`unread` cannot both be true.
 */
export function parseFeedQuery(query: Query): FeedFilter {
  const unread = booleanParam(query, "unread");
  const read = booleanParam(query, "read");
  if (unread && read) throw invalidRequest("read and unread cannot both be true");
  const type = singleParam(query, "type");
  if (type !== undefined && !FEED_TYPES.includes(type as (typeof FEED_TYPES)[number])) {
    throw invalidRequest(`type must be one of: ${FEED_TYPES.join(", ")}`);
  }
  const filter: FeedFilter = pageParams(query);
  if (unread) filter.read = false;
  else if (read) filter.read = true;
  if (type !== undefined) filter.type = type;
  return filter;
}

export const toNotification = (row: Omit<NotificationRow, "user_id" | "event_id">): Notification => ({
  id: row.id,
  type: row.type,
  title: row.title,
  body: row.body,
  link: row.link,
  read_at: toIsoOrNull(row.read_at),
  created_at: toIso(row.created_at),
});

/**
 * One page of the user's feed, newest first. `total` comes from the kept counters (at most one
 * row per feed type), and each filter combination has an index in this order, so page 1 reads
 * only the rows it returns.
 */
export async function listNotifications(
  deps: Deps,
  userId: number,
  filter: FeedFilter,
): Promise<NotificationPage> {
  // Counters and rows from one snapshot, so `total` and `items` agree under concurrent writes.
  return snapshot(deps.store, async (db) => {
    const counts = await feedCounts(db, userId, filter.type);
    const total =
      filter.read === undefined ? counts.total : filter.read ? counts.total - counts.unread : counts.unread;
    const offset = (filter.page - 1) * filter.pageSize;
    if (offset >= total) return { items: [], total, page: filter.page, page_size: filter.pageSize };
    let query = db
      .selectFrom("notifications")
      .select(["id", "type", "title", "body", "link", "read_at", "created_at"])
      .where("user_id", "=", userId);
    if (filter.type !== undefined) query = query.where("type", "=", filter.type);
    if (filter.read !== undefined) query = query.where("read_at", filter.read ? "is not" : "is", null);
    const rows = await query
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(filter.pageSize)
      .offset(offset)
      .execute();
    return { items: rows.map(toNotification), total, page: filter.page, page_size: filter.pageSize };
  });
}

/** The user's unread count, from the kept counters. */
export async function unreadCount(deps: Deps, userId: number): Promise<number> {
  return (await feedCounts(deps.store.db, userId)).unread;
}

async function feedCounts(
  db: Executor,
  userId: number,
  type?: string,
): Promise<{ total: number; unread: number }> {
  let query = db.selectFrom("feed_counters").select(["total", "unread"]).where("user_id", "=", userId);
  if (type !== undefined) query = query.where("type", "=", type);
  const rows = await query.execute();
  return rows.reduce((sum, r) => ({ total: sum.total + r.total, unread: sum.unread + r.unread }), {
    total: 0,
    unread: 0,
  });
}
