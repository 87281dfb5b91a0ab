import { type Static, Type } from "typebox";
import { EVENT_TYPES, EventTypeName } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { invalidRequest, notFound } from "../errors.js";
import { lockFeed } from "../feed/feed-state.js";
import { StringEnum } from "../schemas.js";
import { forUpdate } from "../store/for-update.js";
import type { WebhookEndpointRow } from "../store/schema.js";
import type { Executor } from "../store/store.js";
import { type Tx, transact } from "../store/transaction.js";
import { toIso } from "../time.js";
import { validator } from "../validation.js";
import { checkEndpointUrl, MAX_URL_LENGTH } from "./endpoint-url.js";
import { cancelDeliveries, holdDeliveries, releaseHeldDeliveries } from "./outbox.js";
import { newSecret } from "./signature.js";

export const MAX_ENDPOINTS_PER_USER = 20;

export const WebhookEndpoint = Type.Object({
  id: Type.Integer(),
  url: Type.String(),
  /** null: every event type, including types added later. */
  event_types: Type.Union([Type.Array(EventTypeName), Type.Null()], {
    description: "The event types sent to this endpoint; null: every type, including types added later.",
  }),
  description: Type.Union([Type.String(), Type.Null()]),
  enabled: Type.Boolean(),
  disabled_reason: Type.Union([StringEnum(["manual", "gone", "failing"]), Type.Null()], {
    description: "Why a disabled endpoint is off: manual, gone (it answered 410) or failing (for too long).",
  }),
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
  secret: Type.String({ description: "The signing secret (whsec_…), shown in this answer only." }),
});
export const WebhookEndpointPage = Type.Object({
  items: Type.Array(WebhookEndpoint),
  total: Type.Integer(),
  page: Type.Integer(),
  page_size: Type.Integer(),
});
export const RotatedSecret = Type.Object({
  secret: Type.String({
    description: "The new signing secret; the previous one keeps signing beside it for a while.",
  }),
});

const EventTypes = Type.Union(
  [
    Type.Array(
      StringEnum(EVENT_TYPES, {
        errorMessage: `must be one of the catalog's event types: ${EVENT_TYPES.join(", ")}`,
      }),
      { minItems: 1, maxItems: 100 },
    ),
    Type.Null(),
  ],
  {
    errorMessage: "must be a non-empty array of event types, or null for every type",
    description:
      "The event types to send (de-duplicated); null or absent: every type, including types added later.",
  },
);
const Url = Type.String({ minLength: 1, maxLength: MAX_URL_LENGTH });
const Description = Type.Union([Type.String({ maxLength: 500 }), Type.Null()], {
  errorMessage: "must be a string of at most 500 characters, or null",
});
export const CreateWebhookEndpointRequest = Type.Object(
  { url: Url, event_types: Type.Optional(EventTypes), description: Type.Optional(Description) },
  {
    additionalProperties: false,
    examples: [{ url: "https://hooks.example.com/belfry", event_types: ["system.payment.received"] }],
  },
);
export const UpdateWebhookEndpointRequest = Type.Object(
  {
    url: Type.Optional(Url),
    event_types: Type.Optional(EventTypes),
    description: Type.Optional(Description),
    enabled: Type.Optional(
      Type.Boolean({
        description: "false holds new deliveries; true sends what was held and forgets failures.",
      }),
    ),
  },
  { additionalProperties: false, examples: [{ enabled: false }] },
);
const validateCreate = validator(CreateWebhookEndpointRequest);
const validateUpdate = validator(UpdateWebhookEndpointRequest);

export const toEndpoint = (row: WebhookEndpointRow): WebhookEndpoint => ({
  id: row.id,
  url: row.url,
  event_types:
    row.event_types === null ? null : (JSON.parse(row.event_types) as WebhookEndpoint["event_types"]),
  description: row.description,
  enabled: row.disabled_at === null,
  disabled_reason: row.disabled_reason as WebhookEndpoint["disabled_reason"],
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
    await lockFeed(tx, userId);
    const { n } = await tx.trx
      .selectFrom("webhook_endpoints")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("user_id", "=", userId)
      .where("deleted_at", "is", null)
      .executeTakeFirstOrThrow();
    if (Number(n) >= MAX_ENDPOINTS_PER_USER) {
      throw invalidRequest(
        `A user can have at most ${MAX_ENDPOINTS_PER_USER} webhook endpoints; delete one to add another.`,
      );
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

const endpointQuery = (db: Executor, userId: number, id: number) =>
  db
    .selectFrom("webhook_endpoints")
    .selectAll()
    .where("id", "=", id)
    .where("user_id", "=", userId)
    .where("deleted_at", "is", null);

const noSuchEndpoint = () => notFound("No such webhook endpoint.");

/** The caller's endpoint, or a 404 (also for another user's). */
export async function findEndpoint(deps: Deps, userId: number, id: number): Promise<WebhookEndpointRow> {
  const row = await endpointQuery(deps.store.db, userId, id).executeTakeFirst();
  if (!row) throw noSuchEndpoint();
  return row;
}

/**
 * {@link findEndpoint}, locked until the transaction ends: every change to an endpoint's
 * deliveries locks the endpoint first, then the deliveries, so they cannot deadlock with the
 * worker recording an attempt.
 */
export async function lockEndpoint(tx: Tx, userId: number, id: number): Promise<WebhookEndpointRow> {
  const row = await forUpdate(tx, endpointQuery(tx.trx, userId, id)).executeTakeFirst();
  if (!row) throw noSuchEndpoint();
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
    const before = await lockEndpoint(tx, userId, id);
    const changes: Partial<WebhookEndpointRow> = { updated_at: now };
    if (url !== undefined) changes.url = url;
    if (req.event_types !== undefined) changes.event_types = typesJson(req.event_types);
    if (req.description !== undefined) changes.description = req.description;
    if (req.enabled === false && before.disabled_at === null) {
      Object.assign(changes, { disabled_at: now, disabled_reason: "manual" });
      await holdDeliveries(tx, { userId, endpointId: id }, now);
    }
    if (req.enabled === true && before.disabled_at !== null) {
      Object.assign(changes, { disabled_at: null, disabled_reason: null, failing_since: null });
      await releaseHeldDeliveries(tx, { userId, endpointId: id }, now);
    }
    const row = await tx.trx
      .updateTable("webhook_endpoints")
      .set(changes)
      .where("user_id", "=", userId)
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
    await lockEndpoint(tx, userId, id);
    await tx.trx
      .updateTable("webhook_endpoints")
      .set({ deleted_at: now, updated_at: now })
      .where("user_id", "=", userId)
      .where("id", "=", id)
      .execute();
    await cancelDeliveries(tx, { userId, endpointId: id }, now);
  });
}

/** A new signing secret; the previous one keeps signing beside it for the rotation overlap. */
export async function rotateSecret(deps: Deps, userId: number, id: number) {
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const before = await lockEndpoint(tx, userId, id);
    const secret = newSecret();
    await tx.trx
      .updateTable("webhook_endpoints")
      .set({
        secret,
        previous_secret: before.secret,
        previous_secret_until: now + deps.webhooks.rotationOverlapS,
        updated_at: now,
      })
      .where("user_id", "=", userId)
      .where("id", "=", id)
      .execute();
    return { secret };
  });
}
