import { type Static, Type } from "typebox";
import { FEED_TYPES } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { invalidRequest } from "../errors.js";
import type { NotificationRow } from "../store/schema.js";
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

const MAX_PAGE_SIZE = 200;
const MAX_INT32 = 2 ** 31 - 1;
type Query = Record<string, string | string[] | undefined>;

/**
 * Parses the list query string by the SPEC's rules: an empty value is the same as none; a known
 * parameter given twice is an error; booleans are exactly `true|false|1|0`; `page_size` above 200
 * is served as 200; unknown parameters are ignored.
 */
export function parseFeedQuery(query: Query): FeedFilter {
  const unread = bool(query, "unread");
  const read = bool(query, "read");
  if (unread && read) throw invalidRequest("read and unread cannot both be true");
  const type = single(query, "type");
  if (type !== undefined && !FEED_TYPES.includes(type as (typeof FEED_TYPES)[number])) {
    throw invalidRequest(`type must be one of: ${FEED_TYPES.join(", ")}`);
  }
  const filter: FeedFilter = {
    page: int(query, "page") ?? 1,
    pageSize: Math.min(int(query, "page_size") ?? 50, MAX_PAGE_SIZE),
  };
  if (unread) filter.read = false;
  else if (read) filter.read = true;
  if (type !== undefined) filter.type = type;
  return filter;
}

function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw invalidRequest(`${name} must be given at most once`);
  return value === "" ? undefined : value;
}

function bool(query: Query, name: string): boolean | undefined {
  const value = single(query, name);
  if (value === undefined) return undefined;
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw invalidRequest(`${name} must be true, false, 1 or 0`);
}

function int(query: Query, name: string): number | undefined {
  const value = single(query, name);
  if (value === undefined) return undefined;
  const n = /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 1 && n <= MAX_INT32)) throw invalidRequest(`${name} must be an integer from 1 to ${MAX_INT32}`);
  return n;
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
  const { db } = deps.store;
  const counts = await feedCounts(deps, userId, filter.type);
  const total =
    filter.read === undefined ? counts.total : filter.read ? counts.total - counts.unread : counts.unread;
  const offset = (filter.page - 1) * filter.pageSize;
  let items: Notification[] = [];
  if (offset < total) {
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
    items = rows.map(toNotification);
  }
  return { items, total, page: filter.page, page_size: filter.pageSize };
}

/** The user's unread count, from the kept counters. */
export async function unreadCount(deps: Deps, userId: number): Promise<number> {
  return (await feedCounts(deps, userId)).unread;
}

async function feedCounts(
  deps: Deps,
  userId: number,
  type?: string,
): Promise<{ total: number; unread: number }> {
  let query = deps.store.db
    .selectFrom("feed_counters")
    .select(["total", "unread"])
    .where("user_id", "=", userId);
  if (type !== undefined) query = query.where("type", "=", type);
  const rows = await query.execute();
  return rows.reduce((sum, r) => ({ total: sum.total + r.total, unread: sum.unread + r.unread }), {
    total: 0,
    unread: 0,
  });
}
