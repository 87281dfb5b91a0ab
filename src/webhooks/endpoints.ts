import { type Static, Type } from "typebox";
import { EVENT_TYPES, type EventType } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { conflict, notFound } from "../errors.js";
import type { WebhookEndpointRow } from "../store/schema.js";
import { type Tx, transact } from "../store/transaction.js";
import { toIso } from "../time.js";
import { validator } from "../validation.js";
import { checkEndpointUrl, MAX_URL_LENGTH } from "./endpoint-url.js";
import { moveDeliveries } from "./outbox.js";
import { newSecret } from "./signature.js";

export const MAX_ENDPOINTS_PER_USER = 20;

export const WebhookEndpoint = Type.Object({
  id: Type.Integer(),
  url: Type.String(),
  /** null: every event type, including types added later. */
  event_types: Type.Union([Type.Array(Type.String()), Type.Null()]),
  description: Type.Union([Type.String(), Type.Null()]),
  enabled: Type.Boolean(),
  disabled_reason: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
});
export type WebhookEndpoint = Static<typeof WebhookEndpoint>;
/** The create answer: exactly the contract's fields, with the secret shown this once. */
export const NewWebhookEndpoint = Type.Object({
  id: Type.Integer(),
  url: Type.String(),
  event_types: WebhookEndpoint.properties.event_types,
  description: WebhookEndpoint.properties.description,
  enabled: Type.Boolean(),
  created_at: Type.String(),
  secret: Type.String(),
});
export const WebhookEndpointPage = Type.Object({
  items: Type.Array(WebhookEndpoint),
  total: Type.Integer(),
  page: Type.Integer(),
  page_size: Type.Integer(),
});
export const RotatedSecret = Type.Object({ secret: Type.String() });

const EventTypes = Type.Union(
  [
    Type.Array(
      // Unsafe: a union built from an array types as `never`; the checked schema is the union.
      Type.Unsafe<EventType>(
        Type.Union(
          EVENT_TYPES.map((t) => Type.Literal(t)),
          { errorMessage: `must be one of the catalog's event types: ${EVENT_TYPES.join(", ")}` },
        ),
      ),
      { minItems: 1, maxItems: 100 },
    ),
    Type.Null(),
  ],
  { errorMessage: "must be a non-empty array of event types, or null for every type" },
);
const Url = Type.String({ minLength: 1, maxLength: MAX_URL_LENGTH });
const Description = Type.Union([Type.String({ maxLength: 500 }), Type.Null()], {
  errorMessage: "must be a string of at most 500 characters, or null",
});
export const CreateRequest = Type.Object(
  { url: Url, event_types: Type.Optional(EventTypes), description: Type.Optional(Description) },
  { additionalProperties: false },
);
export const UpdateRequest = Type.Object(
  {
    url: Type.Optional(Url),
    event_types: Type.Optional(EventTypes),
    description: Type.Optional(Description),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const validateCreate = validator(CreateRequest);
const validateUpdate = validator(UpdateRequest);

export const toEndpoint = (row: WebhookEndpointRow): WebhookEndpoint => ({
  id: row.id,
  url: row.url,
  event_types: row.event_types === null ? null : (JSON.parse(row.event_types) as string[]),
  description: row.description,
  enabled: row.disabled_at === null,
  disabled_reason: row.disabled_reason,
  created_at: toIso(row.created_at),
});

const typesJson = (types: string[] | null | undefined) =>
  types ? JSON.stringify([...new Set(types)]) : null;

/** Creates an endpoint; its signing secret is in this answer only. At most 20 per user (409). */
export async function createEndpoint(deps: Deps, userId: number, body: unknown) {
  const req = validateCreate.parse(body);
  const url = await checkEndpointUrl(deps, req.url);
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    // Counting under the user's feed lock keeps two concurrent creates from both passing the limit.
    await lockUser(tx, userId);
    const { n } = await tx.trx
      .selectFrom("webhook_endpoints")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("user_id", "=", userId)
      .where("deleted_at", "is", null)
      .executeTakeFirstOrThrow();
    if (Number(n) >= MAX_ENDPOINTS_PER_USER) {
      throw conflict(`A user can have at most ${MAX_ENDPOINTS_PER_USER} webhook endpoints.`);
    }
    const row = await tx.trx
      .insertInto("webhook_endpoints")
      .values({
        user_id: userId,
        url,
        event_types: typesJson(req.event_types),
        description: req.description ?? null,
        secret: newSecret(),
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const { disabled_reason: _, ...created } = toEndpoint(row);
    return { ...created, secret: row.secret };
  });
}

async function lockUser(tx: Tx, userId: number): Promise<void> {
  const query = tx.trx.selectFrom("feed_states").select("user_id").where("user_id", "=", userId);
  await (tx.dialect === "postgres" ? query.forUpdate() : query).execute();
}

/**
 * The caller's endpoint, or a 404 (also for another user's). Inside a transaction it is locked
 * on PostgreSQL: every change to an endpoint's deliveries locks the endpoint first, then the
 * deliveries, so they cannot deadlock with the worker recording an attempt.
 */
export async function findEndpoint(tx: Tx | Deps, userId: number, id: number): Promise<WebhookEndpointRow> {
  const db = "trx" in tx ? tx.trx : tx.store.db;
  const query = db
    .selectFrom("webhook_endpoints")
    .selectAll()
    .where("id", "=", id)
    .where("user_id", "=", userId)
    .where("deleted_at", "is", null);
  const row = await ("trx" in tx && tx.dialect === "postgres" ? query.forUpdate() : query).executeTakeFirst();
  if (!row) throw notFound("No such webhook endpoint.");
  return row;
}

export async function listEndpoints(deps: Deps, userId: number, page: number, pageSize: number) {
  const base = deps.store.db
    .selectFrom("webhook_endpoints")
    .where("user_id", "=", userId)
    .where("deleted_at", "is", null);
  const { n } = await base.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  const rows = await base
    .selectAll()
    .orderBy("id", "desc")
    .limit(pageSize)
    .offset((page - 1) * pageSize)
    .execute();
  return { items: rows.map(toEndpoint), total: Number(n), page, page_size: pageSize };
}

/**
 * Changes an endpoint. Disabling holds its queued deliveries; enabling sends what was held (a
 * fresh schedule, due now) and forgets the failure streak.
 */
export async function updateEndpoint(deps: Deps, userId: number, id: number, body: unknown) {
  const req = validateUpdate.parse(body);
  const url = req.url === undefined ? undefined : await checkEndpointUrl(deps, req.url);
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const before = await findEndpoint(tx, userId, id);
    const changes: Partial<WebhookEndpointRow> = { updated_at: now };
    if (url !== undefined) changes.url = url;
    if (req.event_types !== undefined) changes.event_types = typesJson(req.event_types);
    if (req.description !== undefined) changes.description = req.description;
    if (req.enabled === false && before.disabled_at === null) {
      Object.assign(changes, { disabled_at: now, disabled_reason: "manual" });
      await moveDeliveries(tx, id, ["pending", "failed"], "held", now);
    }
    if (req.enabled === true && before.disabled_at !== null) {
      Object.assign(changes, { disabled_at: null, disabled_reason: null, failing_since: null });
      await moveDeliveries(tx, id, ["held"], "pending", now);
    }
    const row = await tx.trx
      .updateTable("webhook_endpoints")
      .set(changes)
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return toEndpoint(row);
  });
}

/** Deletes an endpoint and cancels every delivery still waiting to be sent to it. */
export async function deleteEndpoint(deps: Deps, userId: number, id: number): Promise<void> {
  const now = deps.clock();
  await transact(deps.store, async (tx) => {
    await findEndpoint(tx, userId, id);
    await tx.trx
      .updateTable("webhook_endpoints")
      .set({ deleted_at: now, updated_at: now })
      .where("id", "=", id)
      .execute();
    await moveDeliveries(tx, id, ["pending", "failed", "held"], "cancelled", now);
  });
}

/** A new signing secret; the previous one keeps signing beside it for the rotation overlap. */
export async function rotateSecret(deps: Deps, userId: number, id: number) {
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const before = await findEndpoint(tx, userId, id);
    const secret = newSecret();
    await tx.trx
      .updateTable("webhook_endpoints")
      .set({
        secret,
        previous_secret: before.secret,
        previous_secret_until: now + deps.webhooks.rotationOverlapS,
        updated_at: now,
      })
      .where("id", "=", id)
      .execute();
    return { secret };
  });
}
