import { type Directory, feedOf, webhookRecipientsOf } from "../catalog/catalog.js";
import { appendToFeeds, type FeedAppend } from "../feed/append-to-feeds.js";
import type { Tx } from "../store/transaction.js";
import { type DeliveryPlan, queueDeliveries } from "../webhooks/outbox.js";
import type { RecordedEvent } from "./event-row.js";

/** Who an event goes to: feed recipients and webhook recipients, each without repeats. */
export interface RecipientPlan {
  event: RecordedEvent;
  feedTo: number[];
  hookTo: number[];
}

/**
 * Works out each event's recipients from the catalog's rules: feed recipients for feed types,
 * webhook recipients for every type (feed mutes do not apply to webhooks; the feed applies them).
 */
export async function planRecipients(
  directory: Directory,
  events: RecordedEvent[],
): Promise<RecipientPlan[]> {
  const plans: RecipientPlan[] = [];
  for (const event of events) {
    const { type, data, userId } = event.input;
    const ctx = { data, userId, orgManagers: (orgId: number) => directory.orgManagers(orgId) };
    const feed = feedOf(type);
    plans.push({
      event,
      feedTo: feed ? unique(await feed.recipients(ctx)) : [],
      hookTo: unique(await webhookRecipientsOf(type)(ctx)),
    });
  }
  return plans;
}

const unique = (ids: number[]) => [...new Set(ids)];

/**
 * Puts recorded events where they go, set-wise, inside the caller's transaction: the feed
 * appends rows for each feed recipient, the outbox queues a delivery for each matching endpoint
 * of each webhook recipient. One event or a thousand cost the same handful of statements.
 * Returns the feed rows added per event, in order.
 */
export async function fanOut(tx: Tx, directory: Directory, events: RecordedEvent[]): Promise<number[]> {
  const plans = await planRecipients(directory, events);
  const added = await appendToFeeds(
    tx,
    plans.map((p): FeedAppend => ({ ...eventFacts(p.event), recipients: p.feedTo })),
  );
  await queueDeliveries(
    tx,
    plans.map(
      (p): DeliveryPlan => ({
        eventId: p.event.id,
        type: p.event.input.type,
        createdAt: p.event.input.createdAt,
        recipients: p.hookTo,
      }),
    ),
  );
  return added;
}

const eventFacts = ({ id, input }: RecordedEvent) => ({
  eventId: id,
  type: input.type,
  data: input.data,
  overrides: input.overrides ?? null,
  occurredAt: input.occurredAt,
});
