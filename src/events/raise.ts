import type { Transaction } from "kysely";
import { type EventData, type EventType, feedOf, type Rendered } from "../catalog/catalog.js";
import { bumpFeedVersion, lockFeed } from "../feed/feed-lock.js";
import type { Database } from "../store/schema.js";
import type { Dialect } from "../store/store.js";

/** A producer's replacements for a feed row's rendered title, body or link. */
export type Overrides = Partial<Rendered>;

/** One event as it is recorded, before it has an id. */
export interface EventInput<T extends EventType = EventType> {
  type: T;
  data: EventData<T>;
  /** The user the event is about (the ingest `user_id`, the key's owner, the new member). */
  userId: number | null;
  orgId?: number | null;
  /** The user whose action raised it; null for the platform admin and producers. */
  actorUserId?: number | null;
  occurredAt: number;
  createdAt: number;
  idempotencyKey?: string | null;
  fingerprint?: string | null;
  overrides?: Overrides | null;
}

export interface Raised {
  eventId: number;
  /** Feed rows created. */
  notifications: number;
}

/**
 * Records an event and puts it in the feeds of its recipients, inside the caller's transaction:
 * the single path by which every event — ingested or raised by an identity operation — enters
 * Belfry.
 */
export async function raiseEvent(
  trx: Transaction<Database>,
  dialect: Dialect,
  input: EventInput,
): Promise<Raised> {
  const { id } = await insertEvent(trx, input).returning("id").executeTakeFirstOrThrow();
  return { eventId: id, notifications: await addToFeeds(trx, dialect, id, input) };
}

/** The INSERT of an event row; ingest adds its own conflict clause. */
export function insertEvent(trx: Transaction<Database>, input: EventInput) {
  return trx.insertInto("events").values({
    idempotency_key: input.idempotencyKey ?? null,
    fingerprint: input.fingerprint ?? null,
    type: input.type,
    user_id: input.userId,
    org_id: input.orgId ?? null,
    actor_user_id: input.actorUserId ?? null,
    data: JSON.stringify(input.data),
    overrides: input.overrides ? JSON.stringify(input.overrides) : null,
    occurred_at: input.occurredAt,
    created_at: input.createdAt,
  });
}

/**
 * Adds a feed row for each recipient that has not muted the type, with its counters and feed
 * version, and returns how many rows it added. Webhook-only types add none.
 */
export async function addToFeeds(
  trx: Transaction<Database>,
  dialect: Dialect,
  eventId: number,
  input: EventInput,
): Promise<number> {
  const feed = feedOf(input.type);
  if (!feed) return 0;
  const recipients = await feed.recipients({
    data: input.data,
    userId: input.userId,
    actorUserId: input.actorUserId ?? null,
    orgManagers: async (orgId: number) =>
      (
        await trx
          .selectFrom("memberships")
          .select("user_id")
          .where("org_id", "=", orgId)
          .where("role", "in", ["owner", "admin"])
          .execute()
      ).map((r) => r.user_id),
  });
  const row = { ...feed.render(input.data), ...input.overrides };
  let added = 0;
  // Ascending user order: two fan-outs that share recipients lock them in the same order.
  for (const userId of [...new Set(recipients)].sort((a, b) => a - b)) {
    const { mutedTypes } = await lockFeed(trx, dialect, userId);
    if (mutedTypes.includes(input.type)) continue;
    await trx
      .insertInto("notifications")
      .values({
        user_id: userId,
        event_id: eventId,
        type: input.type,
        title: row.title,
        body: row.body,
        link: row.link,
        created_at: input.occurredAt,
        read_at: null,
      })
      .execute();
    await trx
      .insertInto("feed_counters")
      .values({ user_id: userId, type: input.type, total: 1, unread: 1 })
      .onConflict((oc) =>
        oc.columns(["user_id", "type"]).doUpdateSet((eb) => ({
          total: eb("feed_counters.total", "+", 1),
          unread: eb("feed_counters.unread", "+", 1),
        })),
      )
      .execute();
    await bumpFeedVersion(trx, userId);
    added++;
  }
  return added;
}
