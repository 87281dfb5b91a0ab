import { type ExpressionBuilder, sql } from "kysely";
import type { Deps } from "../deps.js";
import type { FeedFilter, NotificationPage } from "../feed/notifications.js";
import { toNotification } from "../feed/notifications.js";
import { effectiveReadAt, type Notifications } from "../feed/read-state.js";
import type { Database } from "../store/schema.js";
import type { Executor } from "../store/store.js";
import { type CredentialRead, type KeyRow, keyLookup, type SessionRow } from "./authenticate.js";
import { routable } from "./routable.js";
import { sessionLookup } from "./sessions.js";

/**
 * A poll's answer read in the statement that authenticates it: one round trip per read. The
 * credential lookup already joins the user's feed state as `s`; these reads add the feed's kept
 * counters, and on PostgreSQL the page itself, to that statement (reads only: the feed module
 * owns and writes those tables). One statement is also one
 * snapshot, so a page and its `total` always agree without a transaction around them.
 */

type WithState = ExpressionBuilder<Database & { s: Database["feed_states"] }, "s">;

/**
 * The user's counter rows (one per feed type, or the one of `type`). With `owner` (see
 * `routable`) each per-user table the statement reads names the user itself, so Citus plans the
 * statement for that user's shard alone.
 */
const counterRows = (eb: WithState, type?: unknown, owner?: number) => {
  let q = eb.selectFrom("feed_counters as c").whereRef("c.user_id", "=", "s.user_id");
  if (owner !== undefined) q = q.where("c.user_id", "=", owner);
  if (type !== undefined) q = q.where("c.type", "=", type as string);
  return q;
};

/** The sum of one counter column over {@link counterRows} (0 when there are none). */
const summed = (column: "total" | "unread") =>
  sql<number>`cast(coalesce(sum(${sql.ref(`c.${column}`)}), 0) as integer)`;

/** {@link summed} as a scalar subquery. */
const counterSum = (eb: WithState, column: "total" | "unread", type?: unknown, owner?: number) =>
  counterRows(eb, type, owner).select(summed(column).as("n"));

/** The credential, its feed version and the user's unread count: unread-count and its 304 in one read. */
const keyUnread = routable((db, owner, hash: string) =>
  keyLookup(db, hash, owner).select((eb) =>
    counterSum(eb as unknown as WithState, "unread", undefined, owner).as("unread"),
  ),
);
const sessionUnread = routable((db, owner, hash: string) =>
  sessionLookup(db, hash, owner).select((eb) =>
    counterSum(eb as unknown as WithState, "unread", undefined, owner).as("unread"),
  ),
);
export const withUnreadCount = {
  key: (db, hash, owner) => keyUnread(db, owner, hash),
  session: (db, hash, owner) => sessionUnread(db, owner, hash),
} as CredentialRead<{ unread: number }>; // a sum with coalesce is never null

/** What each row of a page read carries besides the credential: the counts, and one feed row. */
export interface PageRow {
  read_through_id: number;
  total: number;
  unread: number;
  n_id: number | null;
  n_type: string;
  n_title: string;
  n_body: string;
  n_link: string | null;
  n_read_at: number | null;
  n_created_at: number;
}

type PageArgs = [hash: string, type: string, pageSize: number, offset: number];

/**
 * The credential, the counts and one page of rows in one statement (PostgreSQL: lateral joins,
 * one row per feed row, or one row with no feed row). The counts are summed once, in a lateral
 * of their own (in the select list they were summed again for every row of the page). The page
 * asks for no more rows than remain (the filtered total minus the offset), so the scan stops as
 * soon as it has them. Rows above the read-through id skip the mark-all-read probe, as in the
 * two-statement read.
 */
function preparePageRead(byType: boolean, unreadOnly: boolean) {
  const build = (lookup: typeof keyLookup | typeof sessionLookup) =>
    routable((db: Executor, owner: number | undefined, ...[hash, type, pageSize, offset]: PageArgs) =>
      (lookup as typeof keyLookup)(db, hash, owner)
        .innerJoinLateral(
          (eb) =>
            counterRows(eb as unknown as WithState, byType ? type : undefined, owner)
              .select([summed("total").as("total"), summed("unread").as("unread")])
              .as("counts"),
          (join) => join.onTrue(),
        )
        .select(["s.read_through_id", "counts.total", "counts.unread"])
        .leftJoinLateral(
          (eb) => {
            const filtered = sql.ref(unreadOnly ? "counts.unread" : "counts.total");
            const remaining = sql<number>`greatest(0, ${filtered} - cast(${offset} as bigint))`;
            let q = eb
              .selectFrom("notifications")
              .select((nb) => [
                "notifications.id as n_id",
                "notifications.type as n_type",
                "notifications.title as n_title",
                "notifications.body as n_body",
                "notifications.link as n_link",
                effectiveReadAt(nb as unknown as Notifications, nb.ref("s.read_through_id"), owner),
                "notifications.created_at as n_created_at",
              ])
              .whereRef("notifications.user_id", "=", "s.user_id")
              .$if(owner !== undefined, (q) => q.where("notifications.user_id", "=", owner as number));
            if (byType) q = q.where("notifications.type", "=", type);
            if (unreadOnly)
              q = q
                .where("notifications.read_at", "is", null)
                .whereRef("notifications.id", ">", "s.read_through_id");
            return q
              .orderBy("notifications.created_at", "desc")
              .orderBy("notifications.id", "desc")
              .limit(sql<number>`least(${pageSize}, ${remaining})`)
              .offset(offset)
              .as("p");
          },
          (join) => join.onTrue(),
        )
        .select([
          "p.n_id",
          "p.n_type",
          "p.n_title",
          "p.n_body",
          "p.n_link",
          "p.read_at as n_read_at",
          "p.n_created_at",
        ]),
    );
  type Read<C> = (db: Executor, owner: number | undefined, ...args: PageArgs) => Promise<(C & PageRow)[]>;
  return {
    key: build(keyLookup) as unknown as Read<KeyRow>,
    session: build(sessionLookup) as unknown as Read<SessionRow>,
  };
}

const pageReads = new Map<string, ReturnType<typeof preparePageRead>>();

/**
 * The one-statement read of a list page with these filters, or undefined where the page is read
 * in two statements instead: on SQLite, where a statement costs no round trip; and for `read=true`,
 * whose partial index the generic condition could not use.
 */
export function pageRead(deps: Deps, filter: FeedFilter): CredentialRead<PageRow> | undefined {
  if (!deps.store.roundTrips || filter.read === true) return undefined;
  const byType = filter.type !== undefined;
  const unreadOnly = filter.read === false;
  const shape = `${byType} ${unreadOnly}`;
  let read = pageReads.get(shape);
  if (!read) {
    read = preparePageRead(byType, unreadOnly);
    pageReads.set(shape, read);
  }
  const { key, session } = read;
  const args = [filter.type ?? "", filter.pageSize, (filter.page - 1) * filter.pageSize] as const;
  return {
    key: (db, hash, owner) => key(db, owner, hash, ...args),
    session: (db, hash, owner) => session(db, owner, hash, ...args),
  };
}

/** A page from the rows of a one-statement page read. */
export function pageFromRows(
  rows: PageRow[],
  version: number,
  filter: FeedFilter,
): NotificationPage & { version: number } {
  const first = rows[0] as PageRow;
  const total = filter.read === false ? first.unread : first.total;
  const items = [];
  for (const r of rows) {
    if (r.n_id === null) continue;
    items.push(
      toNotification({
        id: r.n_id,
        type: r.n_type,
        title: r.n_title,
        body: r.n_body,
        link: r.n_link,
        read_at: r.n_read_at,
        created_at: r.n_created_at,
      }),
    );
  }
  return { items, total, page: filter.page, page_size: filter.pageSize, version };
}
