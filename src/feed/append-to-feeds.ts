import { sql } from "kysely";
import { type EventType, type Overrides, render } from "../catalog/catalog.js";
import { bulkColumns, insertMany, pgInsertMany } from "../store/insert-many.js";
import type { NotificationRow } from "../store/schema.js";
import type { Tx } from "../store/transaction.js";
import { bumpFeedVersions, bumpFeedVersionsFrom, lockFeeds } from "./feed-state.js";

/** One event to append to its recipients' feeds. */
export interface FeedAppend {
  eventId: number;
  type: EventType;
  data: unknown;
  overrides: Overrides | null;
  /** When the event occurred: the row's `created_at`. */
  occurredAt: number;
  /** Feed recipients, without repeats; those who muted the type are skipped here. */
  recipients: number[];
}

/** A feed row about to be written. */
type NewNotification = Omit<NotificationRow, "id">;

const NOTIFICATION_COLUMNS = bulkColumns<NewNotification>({
  bigint: ["user_id", "event_id", "created_at", "read_at"],
  text: ["type", "title", "body", "link"],
});

/**
 * Appends events to their recipients' feeds, set-wise, inside the caller's transaction: takes
 * the recipients' feed locks (ascending), writes a row for each recipient that has not muted the
 * type — rendered once by the catalog, as its webhook payload is — then bumps the counters, and
 * each feed's version and newest id: one statement each on SQLite, one for all three where each
 * statement is a round trip (PostgreSQL). Returns the rows added per event.
 */
export async function appendToFeeds(tx: Tx, events: FeedAppend[]): Promise<number[]> {
  const users = [...new Set(events.flatMap((e) => e.recipients))].sort((a, b) => a - b);
  if (users.length === 0) return events.map(() => 0);
  const states = await lockFeeds(tx, users);

  const rows: NewNotification[] = [];
  const added = [];
  for (const event of events) {
    const rendered = render(event.type, event.data, event.overrides);
    if (!rendered) {
      added.push(0);
      continue;
    }
    const to = event.recipients.filter((userId) => !states.get(userId)?.mutedTypes.includes(event.type));
    for (const userId of to) {
      rows.push({
        user_id: userId,
        event_id: event.eventId,
        type: event.type,
        title: rendered.title,
        body: rendered.body,
        link: rendered.link,
        created_at: event.occurredAt,
        read_at: null,
      });
    }
    added.push(to.length);
  }
  if (rows.length === 0) return added;
  tx.changes.created += rows.length;
  if (tx.roundTrips) {
    await appendInOneStatement(tx, rows);
    return added;
  }

  const ids = await insertMany<NewNotification, { id: number; user_id: number }>(tx, {
    table: "notifications",
    columns: NOTIFICATION_COLUMNS,
    rows,
    returning: ["id", "user_id"],
  });
  const newest = new Map<number, number>();
  for (const r of ids)
    newest.set(Number(r.user_id), Math.max(newest.get(Number(r.user_id)) ?? 0, Number(r.id)));
  await countNewRows(tx, rows);
  await bumpFeedVersions(tx, newest);
  return added;
}

/**
 * PostgreSQL: the rows, their counters and their users' feed versions in one statement (one
 * round trip rather than three; a chain of group commits pays each round trip once per link).
 * Each later part reads what the insert returned; all of them see the feed locks already taken.
 */
async function appendInOneStatement(tx: Tx, rows: NewNotification[]): Promise<void> {
  const insert = pgInsertMany({
    table: "notifications",
    columns: NOTIFICATION_COLUMNS,
    rows,
    returning: ["id", "user_id", "type"],
  });
  await sql`with "n" as (${insert}),
    "c" as (insert into "feed_counters" ("user_id", "type", "total", "unread")
      select "user_id", "type", count(*), count(*) from "n" group by "user_id", "type"
      on conflict ("user_id", "type") do update
      set "total" = "feed_counters"."total" + excluded."total",
        "unread" = "feed_counters"."unread" + excluded."unread"),
    "v" as (${bumpFeedVersionsFrom("n")})
    select count(*) from "n"`.execute(tx.trx);
  for (const r of rows) tx.changes.feeds.add(r.user_id);
}

/** Adds new unread rows to the per-(user, type) counters, one upsert for all of them. */
async function countNewRows(tx: Tx, rows: { user_id: number; type: string }[]): Promise<void> {
  const counts = new Map<string, { user_id: number; type: string; total: number; unread: number }>();
  for (const r of rows) {
    const key = `${r.user_id} ${r.type}`;
    const c = counts.get(key) ?? { user_id: r.user_id, type: r.type, total: 0, unread: 0 };
    c.total++;
    c.unread++;
    counts.set(key, c);
  }
  await tx.trx
    .insertInto("feed_counters")
    .values([...counts.values()])
    .onConflict((oc) =>
      oc.columns(["user_id", "type"]).doUpdateSet((eb) => ({
        total: eb("feed_counters.total", "+", eb.ref("excluded.total")),
        unread: eb("feed_counters.unread", "+", eb.ref("excluded.unread")),
      })),
    )
    .execute();
}
