import { sql } from "kysely";
import { feedOf, type RecipientContext, webhookRecipientsOf } from "../catalog/catalog.js";
import { lockFeeds } from "../feed/feed-lock.js";
import { insertMany } from "../store/insert-many.js";
import type { DeliveryStatus } from "../store/schema.js";
import type { Tx } from "../store/transaction.js";
import { countMany } from "../webhooks/outbox.js";
import type { EventInput } from "./raise.js";

/** An event row just written, with what it was written from. */
export interface RecordedEvent {
  id: number;
  input: EventInput;
}

/**
 * Puts recorded events where they go, set-wise, inside the caller's transaction: feed rows for
 * each feed recipient that has not muted the type (with counters, feed version and newest id),
 * and a webhook delivery for each matching endpoint of each webhook recipient (feed mutes do not
 * apply to webhooks). One event or a thousand cost the same handful of statements. Returns the
 * feed rows added per event, in order.
 */
export async function fanOut(tx: Tx, events: RecordedEvent[]): Promise<number[]> {
  const plans = [];
  for (const e of events) {
    const ctx = recipientContext(tx, e.input);
    const feed = feedOf(e.input.type);
    plans.push({
      event: e,
      feedTo: feed ? unique(await feed.recipients(ctx)) : [],
      hookTo: unique(await webhookRecipientsOf(e.input.type)(ctx)),
    });
  }
  const added = await addToFeeds(tx, plans);
  await queueDeliveries(
    tx,
    plans.map((p) => ({ event: p.event, recipients: p.hookTo })),
  );
  return added;
}

const unique = (ids: number[]) => [...new Set(ids)];

function recipientContext(tx: Tx, input: EventInput): RecipientContext<unknown> {
  return {
    data: input.data,
    userId: input.userId,
    orgManagers: async (orgId: number) =>
      (
        await tx.trx
          .selectFrom("memberships")
          .select("user_id")
          .where("org_id", "=", orgId)
          .where("role", "in", ["owner", "admin"])
          .execute()
      ).map((r) => r.user_id),
  };
}

async function addToFeeds(tx: Tx, plans: { event: RecordedEvent; feedTo: number[] }[]): Promise<number[]> {
  const users = unique(plans.flatMap((p) => p.feedTo)).sort((a, b) => a - b);
  if (users.length === 0) return plans.map(() => 0);
  const states = await lockFeeds(tx, users);

  const rows = [];
  const added = [];
  for (const { event, feedTo } of plans) {
    const feed = feedOf(event.input.type);
    if (!feed) {
      added.push(0);
      continue;
    }
    const { title, body, link } = { ...feed.render(event.input.data), ...event.input.overrides };
    const to = feedTo.filter((userId) => !states.get(userId)?.mutedTypes.includes(event.input.type));
    for (const userId of to) {
      rows.push({
        user_id: userId,
        event_id: event.id,
        type: event.input.type,
        title,
        body,
        link,
        created_at: event.input.occurredAt,
        read_at: null,
      });
    }
    added.push(to.length);
  }
  if (rows.length === 0) return added;

  const lastId = new Map<number, number>();
  const ids = await insertMany<(typeof rows)[number], { id: number; user_id: number }>(tx, {
    table: "notifications",
    columns: [
      { name: "user_id", pg: "bigint" },
      { name: "event_id", pg: "bigint" },
      { name: "type", pg: "text" },
      { name: "title", pg: "text" },
      { name: "body", pg: "text" },
      { name: "link", pg: "text" },
      { name: "created_at", pg: "bigint" },
      { name: "read_at", pg: "bigint" },
    ],
    rows,
    returning: ["id", "user_id"],
  });
  for (const r of ids)
    lastId.set(Number(r.user_id), Math.max(lastId.get(Number(r.user_id)) ?? 0, Number(r.id)));
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
  // One statement for every user's version and newest id.
  const changed = [...lastId.entries()];
  const newest = sql<number>`case user_id ${sql.join(
    changed.map(([userId, id]) => sql`when ${userId} then cast(${id} as bigint)`),
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
  tx.changes.created += rows.length;
  return added;
}

async function queueDeliveries(
  tx: Tx,
  plans: { event: RecordedEvent; recipients: number[] }[],
): Promise<void> {
  const users = unique(plans.flatMap((p) => p.recipients));
  if (users.length === 0) return;
  const endpoints = await tx.trx
    .selectFrom("webhook_endpoints")
    .select(["id", "user_id", "event_types", "disabled_at"])
    .where("user_id", "in", users)
    .where("deleted_at", "is", null)
    .orderBy("id")
    .execute();
  if (endpoints.length === 0) return;
  const types = new Map(
    endpoints.map((e) => [e.id, e.event_types === null ? null : (JSON.parse(e.event_types) as string[])]),
  );
  const rows = [];
  for (const { event, recipients } of plans) {
    const now = event.input.createdAt;
    for (const e of endpoints) {
      if (!recipients.includes(e.user_id)) continue;
      if (types.get(e.id)?.includes(event.input.type) === false) continue;
      const held = e.disabled_at !== null;
      const status: DeliveryStatus = held ? "held" : "pending";
      rows.push({
        endpoint_id: e.id,
        event_id: event.id,
        status,
        schedule_step: 0,
        next_attempt_at_ms: held ? null : now * 1000,
        created_at: now,
        updated_at: now,
      });
    }
  }
  if (rows.length === 0) return;
  await insertMany(tx, {
    table: "webhook_deliveries",
    columns: [
      { name: "endpoint_id", pg: "bigint" },
      { name: "event_id", pg: "bigint" },
      { name: "status", pg: "text" },
      { name: "schedule_step", pg: "integer" },
      { name: "next_attempt_at_ms", pg: "bigint" },
      { name: "created_at", pg: "bigint" },
      { name: "updated_at", pg: "bigint" },
    ],
    rows,
  });
  await countMany(tx, rows);
  if (rows.some((r) => r.status === "pending")) tx.changes.deliveries = true;
}
