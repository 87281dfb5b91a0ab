import { type Static, Type } from "typebox";
import { EventTypeName } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { invalidRequest, notFound } from "../errors.js";
import { EnumParam, type Query, queryParams } from "../query-params.js";
import { StringEnum } from "../schemas.js";
import type { DeliveryStatus } from "../store/schema.js";
import { transact } from "../store/transaction.js";
import { parseRfc3339, toIso } from "../time.js";
import { validator } from "../validation.js";
import { findEndpoint, lockEndpoint } from "./endpoints.js";
import { moveDeliveries } from "./outbox.js";

/** The statuses a caller sees; `cancelled` belongs to deleted endpoints, which are gone. */
export const DELIVERY_STATUSES = ["pending", "succeeded", "failed", "exhausted", "held"] as const;

export const Attempt = Type.Object({
  number: Type.Integer(),
  attempted_at: Type.String(),
  response_status: Type.Union([Type.Integer(), Type.Null()]),
  response_body: Type.Union([Type.String(), Type.Null()]),
  latency_ms: Type.Integer(),
  error_class: Type.Union([Type.String(), Type.Null()]),
});
export const Delivery = Type.Object({
  id: Type.Integer(),
  event_id: Type.String({ description: "The event's opaque id (evt_…), also sent as webhook-id." }),
  event_type: EventTypeName,
  status: StringEnum(DELIVERY_STATUSES),
  next_attempt_at: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  attempts: Type.Array(Attempt),
});
export type Delivery = Static<typeof Delivery>;
export const DeliveryPage = Type.Object({
  items: Type.Array(Delivery),
  total: Type.Integer(),
  page: Type.Integer(),
  page_size: Type.Integer(),
});
export const QueuedDelivery = Type.Object({ delivery_id: Type.Integer() });
export const Requeued = Type.Object({ requeued: Type.Integer() });

export const RecoverRequest = Type.Object(
  {
    since: Type.String({
      maxLength: 64,
      errorMessage: "must be an RFC 3339 date-time",
      description: "RFC 3339: failed and exhausted deliveries of events recorded at or after this instant.",
    }),
  },
  { additionalProperties: false, examples: [{ since: "2026-05-22T00:00:00Z" }] },
);
const validateRecover = validator(RecoverRequest);

/** The deliveries list's own filter (beside `page` and `page_size`). */
export const DeliveryStatusQuery = Type.Object({
  status: EnumParam(DELIVERY_STATUSES, "Only deliveries in this status."),
});
const readStatus = queryParams(DeliveryStatusQuery).status;

/** `?status=` of the deliveries list, checked. */
export function parseStatus(query: Query): DeliveryStatus | undefined {
  return readStatus(query);
}

/** An endpoint's deliveries, newest first, each with its attempts; the total from kept counts. */
export async function listDeliveries(
  deps: Deps,
  userId: number,
  endpointId: number,
  filter: { status?: DeliveryStatus | undefined; page: number; pageSize: number },
) {
  await findEndpoint(deps, userId, endpointId);
  const { db } = deps.store;
  const statuses = filter.status ? [filter.status] : [...DELIVERY_STATUSES];
  const counts = await db
    .selectFrom("webhook_delivery_counters")
    .select("count")
    .where("user_id", "=", userId)
    .where("endpoint_id", "=", endpointId)
    .where("status", "in", statuses)
    .execute();
  const total = counts.reduce((sum, c) => sum + c.count, 0);
  const offset = (filter.page - 1) * filter.pageSize;
  let items: Delivery[] = [];
  if (offset < total) {
    let query = db
      .selectFrom("webhook_deliveries as d")
      .select(["d.id", "d.event_id", "d.status", "d.next_attempt_at_ms", "d.created_at"])
      .where("d.user_id", "=", userId)
      .where("d.endpoint_id", "=", endpointId);
    query = filter.status
      ? query.where("d.status", "=", filter.status)
      : query.where("d.status", "!=", "cancelled");
    const rows = await query.orderBy("d.id", "desc").limit(filter.pageSize).offset(offset).execute();
    // Events are read by id on their own: on Citus they live apart from the user's shard.
    const events =
      rows.length === 0
        ? []
        : await db
            .selectFrom("events")
            .select(["id", "public_id", "type"])
            .where(
              "id",
              "in",
              rows.map((r) => r.event_id),
            )
            .execute();
    const eventOf = new Map(events.map((e) => [e.id, e]));
    const attempts =
      rows.length === 0
        ? []
        : await db
            .selectFrom("webhook_attempts")
            .selectAll()
            .where("user_id", "=", userId)
            .where(
              "delivery_id",
              "in",
              rows.map((r) => r.id),
            )
            .orderBy("number")
            .execute();
    // (A delivery whose event is gone is left out, as the join it replaces left it out.)
    items = rows.flatMap((r) => {
      const e = eventOf.get(r.event_id);
      if (!e) return [];
      return {
        id: r.id,
        event_id: e.public_id,
        event_type: e.type as Delivery["event_type"],
        status: r.status as Delivery["status"], // cancelled rows are filtered out above
        next_attempt_at: r.next_attempt_at_ms === null ? null : toIso(Math.ceil(r.next_attempt_at_ms / 1000)),
        created_at: toIso(r.created_at),
        attempts: attempts
          .filter((a) => a.delivery_id === r.id)
          .map((a) => ({
            number: a.number,
            attempted_at: toIso(a.attempted_at),
            response_status: a.response_status,
            response_body: a.response_body,
            latency_ms: a.latency_ms,
            error_class: a.error_class,
          })),
      };
    });
  }
  return { items, total, page: filter.page, page_size: filter.pageSize };
}

/** Where a restarted delivery goes: sent now, or held while its endpoint is disabled. */
const restartedStatus = (disabledAt: number | null): DeliveryStatus =>
  disabledAt === null ? "pending" : "held";

/** Sends one delivery again, on a fresh schedule. */
export async function redeliver(deps: Deps, userId: number, endpointId: number, deliveryId: number) {
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const endpoint = await lockEndpoint(tx, userId, endpointId);
    const to = restartedStatus(endpoint.disabled_at);
    const moved = await moveDeliveries(tx, { userId, endpointId }, [...DELIVERY_STATUSES], to, now, {
      deliveryId,
    });
    if (moved === 0) throw notFound("No such delivery for this endpoint.");
    return { delivery_id: deliveryId };
  });
}

/**
 * Restarts every failed or exhausted delivery of the endpoint whose event was recorded at or
 * after `since`. It does not re-enable a disabled endpoint: there they wait as held.
 */
export async function recoverDeliveries(deps: Deps, userId: number, endpointId: number, body: unknown) {
  const { since } = validateRecover.parse(body);
  const sinceSeconds = parseRfc3339(since);
  if (sinceSeconds === undefined)
    throw invalidRequest("since must be an RFC 3339 date-time, e.g. 2026-05-22T08:08:00Z");
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const endpoint = await lockEndpoint(tx, userId, endpointId);
    const to = restartedStatus(endpoint.disabled_at);
    const requeued = await moveDeliveries(tx, { userId, endpointId }, ["failed", "exhausted"], to, now, {
      since: sinceSeconds,
    });
    return { requeued };
  });
}
