import { randomBytes } from "node:crypto";
import type { Transaction } from "kysely";
import {
  type EventData,
  type EventType,
  feedOf,
  type RecipientContext,
  type Rendered,
  webhookRecipientsOf,
} from "../catalog/catalog.js";
import { bumpFeedVersion, lockFeed } from "../feed/feed-lock.js";
import type { Database } from "../store/schema.js";
import type { Tx } from "../store/transaction.js";
import { queueDeliveries } from "../webhooks/outbox.js";

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

/** An opaque event id: `evt_` + 96 random bits. */
export const newEventId = () => `evt_${randomBytes(12).toString("hex")}`;

/**
 * Records an event and fans it out, inside the caller's transaction: the single path by which
 * every event — ingested or raised by an identity operation — enters Belfry.
 */
export async function raiseEvent(tx: Tx, input: EventInput): Promise<Raised> {
  const { id } = await insertEvent(tx.trx, input).returning("id").executeTakeFirstOrThrow();
  return fanOut(tx, id, input);
}

/** The INSERT of an event row; ingest adds its own conflict clause. */
export function insertEvent(trx: Transaction<Database>, input: EventInput) {
  return trx.insertInto("events").values({
    public_id: newEventId(),
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
 * Puts a recorded event where it goes: a feed row for each feed recipient that has not muted the
 * type, and a webhook delivery for each matching endpoint of its webhook recipients (feed mutes
 * do not apply to webhooks). Returns the feed rows added.
 */
export async function fanOut(tx: Tx, eventId: number, input: EventInput): Promise<Raised> {
  const ctx: RecipientContext<unknown> = {
    data: input.data,
    userId: input.userId,
    actorUserId: input.actorUserId ?? null,
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
  const notifications = await addToFeeds(tx, eventId, input, ctx);
  await queueDeliveries(tx, eventId, input.type, await webhookRecipientsOf(input.type)(ctx), input.createdAt);
  return { eventId, notifications };
}

async function addToFeeds(
  tx: Tx,
  eventId: number,
  input: EventInput,
  ctx: RecipientContext<unknown>,
): Promise<number> {
  const feed = feedOf(input.type);
  if (!feed) return 0;
  const row = { ...feed.render(input.data), ...input.overrides };
  let added = 0;
  // Ascending user order: two fan-outs that share recipients lock them in the same order.
  for (const userId of [...new Set(await feed.recipients(ctx))].sort((a, b) => a - b)) {
    const { mutedTypes } = await lockFeed(tx, userId);
    if (mutedTypes.includes(input.type)) continue;
    const { id } = await tx.trx
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
      .returning("id")
      .executeTakeFirstOrThrow();
    await tx.trx
      .insertInto("feed_counters")
      .values({ user_id: userId, type: input.type, total: 1, unread: 1 })
      .onConflict((oc) =>
        oc.columns(["user_id", "type"]).doUpdateSet((eb) => ({
          total: eb("feed_counters.total", "+", 1),
          unread: eb("feed_counters.unread", "+", 1),
        })),
      )
      .execute();
    await bumpFeedVersion(tx, userId, { last_id: id });
    added++;
  }
  return added;
}
