import { type EventType, feedOf } from "../catalog/catalog.js";
import type { EventRow } from "../store/schema.js";
import { toIso } from "../time.js";

/**
 * The JSON body delivered for an event: `{id, type, created_at, data}`, plus `title`, `body` and
 * `link` for feed types, rendered exactly as the feed row. Identical on every attempt.
 */
export function webhookPayload(
  event: Pick<EventRow, "public_id" | "type" | "occurred_at" | "data" | "overrides">,
): string {
  const data = JSON.parse(event.data) as unknown;
  const base = { id: event.public_id, type: event.type, created_at: toIso(event.occurred_at), data };
  const feed = feedOf(event.type as EventType);
  if (!feed) return JSON.stringify(base);
  const overrides = event.overrides === null ? {} : (JSON.parse(event.overrides) as object);
  const { title, body, link } = { ...feed.render(data), ...overrides };
  return JSON.stringify({ ...base, title, body, link });
}
