import { randomBytes } from "node:crypto";
import type { Transaction } from "kysely";
import type { EventData, EventType, Overrides } from "../catalog/catalog.js";
import { bulkColumns } from "../store/insert-many.js";
import type { Database } from "../store/schema.js";

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
  overrides?: Overrides | null;
}

/** An event row just written, with what it was written from. */
export interface RecordedEvent {
  id: number;
  input: EventInput;
}

/** Random bytes drawn in bulk: one `randomBytes` call per 341 ids instead of one per id. */
let pool = Buffer.alloc(0);
let used = 0;

/** An opaque event id: `evt_` + 96 random bits. */
export function newEventId(): string {
  if (used + 12 > pool.length) {
    pool = randomBytes(4092);
    used = 0;
  }
  used += 12;
  return `evt_${pool.toString("hex", used - 12, used)}`;
}

/** The INSERT of one event row. */
export const insertEvent = (trx: Transaction<Database>, input: EventInput) =>
  trx.insertInto("events").values(eventRow(input));

/** The columns of an event row, for bulk inserts. */
export const EVENT_COLUMNS = bulkColumns<ReturnType<typeof eventRow>>({
  bigint: ["user_id", "org_id", "actor_user_id", "occurred_at", "created_at"],
  text: ["public_id", "idempotency_key", "type", "data", "overrides"],
});

/** The row that records an event. */
export function eventRow(input: EventInput) {
  return {
    public_id: newEventId(),
    idempotency_key: input.idempotencyKey ?? null,
    type: input.type,
    user_id: input.userId,
    org_id: input.orgId ?? null,
    actor_user_id: input.actorUserId ?? null,
    data: JSON.stringify(input.data),
    overrides: input.overrides ? JSON.stringify(input.overrides) : null,
    occurred_at: input.occurredAt,
    created_at: input.createdAt,
  };
}
