import { type Static, Type } from "typebox";
import { FEED_TYPES, FeedTypeName, renderExample } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { invalidRequest } from "../errors.js";
import { BooleanParam, EnumParam, PageQuery, pageParams, type Query, queryParams } from "../query-params.js";
import { prepared } from "../store/prepared.js";
import type { NotificationRow } from "../store/schema.js";
import type { Executor } from "../store/store.js";
import { snapshot } from "../store/transaction.js";
import { toIso, toIsoOrNull } from "../time.js";
import { type FeedSummary, readFeedSummary, readFeedSummaryNow } from "./feed-state.js";
import { effectiveReadAt, whereRead } from "./read-state.js";

/** One row of every feed type, as the catalog renders its sample data: the API reference's examples. */
const EXAMPLES = FEED_TYPES.map((type, i) => ({
  id: FEED_TYPES.length - i,
  type,
  ...(renderExample(type) as NonNullable<ReturnType<typeof renderExample>>),
  read_at: i === 0 ? null : "2026-05-22T08:09:12Z",
  created_at: `2026-05-22T08:0${8 - i}:00Z`,
}));

export const Notification = Type.Object(
  {
    id: Type.Integer({ description: "Assigned in insertion order." }),
    type: FeedTypeName,
    title: Type.String(),
    body: Type.String(),
    link: Type.Union([Type.String(), Type.Null()], { description: "A console-relative path, or null." }),
    read_at: Type.Union([Type.String(), Type.Null()], { description: "RFC 3339 UTC; null while unread." }),
    created_at: Type.String({ description: "RFC 3339 UTC, whole seconds: when the event occurred." }),
  },
  { description: "One row of the user's feed.", examples: EXAMPLES },
);
export type Notification = Static<typeof Notification>;

export const NotificationPage = Type.Object(
  {
    items: Type.Array(Notification),
    total: Type.Integer({ description: "Every row matching the filters, whatever the page." }),
    page: Type.Integer(),
    page_size: Type.Integer(),
  },
  { examples: [{ items: EXAMPLES.slice(0, 2), total: 7, page: 1, page_size: 2 }] },
);
export type NotificationPage = Static<typeof NotificationPage>;

export const UnreadCount = Type.Object({ count: Type.Integer() }, { examples: [{ count: 3 }] });

/** The list's query string (`GET /api/v1/me/notifications`). */
export const FeedQuery = Type.Object({
  unread: BooleanParam("true: only unread rows. Cannot be true together with read."),
  read: BooleanParam("true: only read rows. Cannot be true together with unread."),
  type: EnumParam(FEED_TYPES, "Only rows of this feed type."),
  ...PageQuery,
});
const readFeedQuery = queryParams(FeedQuery);

/** The list filters, parsed. `read`: true → read rows only, false → unread only. */
export interface FeedFilter {
  read?: boolean;
  type?: string;
  page: number;
  pageSize: number;
}

/**
 * Parses the list query string by the rules of {@link FeedQuery} (see `query-params.ts`);
 * `read` and `unread` cannot both be true.
 */
export function parseFeedQuery(query: Query): FeedFilter {
  const unread = readFeedQuery.unread(query);
  const read = readFeedQuery.read(query);
  if (unread && read) throw invalidRequest("read and unread cannot both be true");
  const type = readFeedQuery.type(query);
  const filter: FeedFilter = pageParams(query);
  if (unread) filter.read = false;
  else if (read) filter.read = true;
  if (type !== undefined) filter.type = type;
  return filter;
}

export const toNotification = (row: Omit<NotificationRow, "user_id" | "event_id">): Notification => ({
  id: row.id,
  type: row.type as Notification["type"],
  title: row.title,
  body: row.body,
  link: row.link,
  read_at: toIsoOrNull(row.read_at),
  created_at: toIso(row.created_at),
});

/**
 * One page of the user's feed, newest first. `total` comes from the kept counters (at most one
 * row per feed type), and each filter combination has an index in this order; the query asks for
 * no more rows than remain (`total` minus the offset), so a scan stops as soon as it has them and
 * page 1 reads only the rows it returns.
 */
export async function listNotifications(
  deps: Deps,
  userId: number,
  filter: FeedFilter,
): Promise<NotificationPage & { version: number }> {
  // The embedded store reads state and rows at once when it is free: nothing can write between.
  const state = readFeedSummaryNow(deps.store.db, userId, filter.type);
  if (state) {
    const { page, rows } = pageFor(state, filter);
    const read = rows && pageQuery(rows.shape).now(deps.store.db, userId, ...rows.args);
    if (!rows) return { items: [], ...page };
    if (read) return { items: read.map(toNotification), ...page };
  }
  // State, counters and rows from one snapshot, so `total` and `items` agree under concurrent writes.
  return snapshot(deps.store, async (db) => {
    const { page, rows } = pageFor(await readFeedSummary(db, userId, filter.type), filter);
    if (!rows) return { items: [], ...page };
    const read = await pageQuery(rows.shape)(db, userId, ...rows.args);
    return { items: read.map(toNotification), ...page };
  });
}

/** The page's numbers from the feed's state, and which rows to read for it (none past the end). */
function pageFor(state: FeedSummary, filter: FeedFilter) {
  const total =
    filter.read === undefined ? state.total : filter.read ? state.total - state.unread : state.unread;
  const offset = (filter.page - 1) * filter.pageSize;
  const page = { total, page: filter.page, page_size: filter.pageSize, version: state.version };
  if (offset >= total) return { page, rows: undefined };
  const shape = { byType: filter.type !== undefined, read: filter.read, marked: state.readThroughId > 0 };
  const limit = Math.min(filter.pageSize, total - offset);
  const args = [filter.type ?? "", state.readThroughId, limit, offset] as const;
  return { page, rows: { shape, args } };
}

const pageQueries = new Map<string, ReturnType<typeof preparePage>>();

/** The page query for one combination of filters (each its own prepared shape). */
function pageQuery({
  byType,
  read,
  marked,
}: {
  byType: boolean;
  read: boolean | undefined;
  marked: boolean;
}) {
  const key = `${byType} ${read} ${marked}`;
  let query = pageQueries.get(key);
  if (!query) {
    query = preparePage(byType, read, marked);
    pageQueries.set(key, query);
  }
  return query;
}

/** A feed row's columns as the API shows it, `readAt` giving its read time. */
const rowColumns = <R>(readAt: R) => ["id", "type", "title", "body", "link", readAt, "created_at"] as const;

function preparePage(byType: boolean, read: boolean | undefined, marked: boolean) {
  return prepared(
    (db, userId: number, type: string, readThroughId: number, limit: number, offset: number) => {
      // Until a user's first mark-all-read a row's own `read_at` is the whole story.
      let query = db
        .selectFrom("notifications")
        .select((eb) => rowColumns(marked ? effectiveReadAt(eb, readThroughId, userId) : "read_at"))
        .where("user_id", "=", userId);
      if (byType) query = query.where("type", "=", type);
      if (read !== undefined) query = whereRead(query, read, readThroughId, marked);
      return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).offset(offset);
    },
  );
}

/**
 * The user's rows with ids in (`afterId`, `throughId`], oldest first, at most `limit` of them:
 * what a live stream replays after a reconnect or a change.
 */
export async function listRowsAfter(
  db: Executor,
  userId: number,
  afterId: number,
  throughId: number,
  limit: number,
): Promise<Notification[]> {
  const rows = await db
    .selectFrom("notifications")
    .select((eb) => rowColumns(effectiveReadAt(eb, undefined, userId)))
    .where("user_id", "=", userId)
    .where("id", ">", afterId)
    .where("id", "<=", throughId)
    .orderBy("id")
    .limit(limit)
    .execute();
  return rows.map(toNotification);
}
