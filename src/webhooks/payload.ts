import { type TSchema, Type } from "typebox";
import {
  catalog,
  type EventType,
  feedOf,
  type Overrides,
  render,
  renderExample,
} from "../catalog/catalog.js";
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
  const overrides = event.overrides === null ? null : (JSON.parse(event.overrides) as Overrides);
  const rendered = render(event.type as EventType, data, overrides);
  if (!rendered) return JSON.stringify(base);
  const { title, body, link } = rendered;
  return JSON.stringify({ ...base, title, body, link });
}

/**
 * The schema of the body delivered for `type`, for the API reference's `webhooks` section: the
 * envelope, the type's data schema (by its component name) and, for feed types, the rendering.
 */
export function webhookPayloadSchema(type: EventType, dataRef: string): TSchema {
  const rendered = feedOf(type);
  return Type.Object(
    {
      id: Type.String({ description: "The event's opaque id (evt_…); the same as the webhook-id header." }),
      type: Type.Literal(type),
      created_at: Type.String({ description: "When the event occurred, RFC 3339 UTC." }),
      data: Type.Unsafe({ $ref: dataRef }),
      ...(rendered && {
        title: Type.String({ description: "As the feed row reads." }),
        body: Type.String(),
        link: Type.Union([Type.String(), Type.Null()]),
      }),
    },
    {
      examples: [
        {
          id: "evt_8c1f0a4e2b7d9c3a5f6e1d20",
          type,
          created_at: "2026-05-22T08:08:00Z",
          data: catalog[type].example,
          ...renderExample(type),
        },
      ],
    },
  );
}
