import { type Static, type TSchema, Type } from "typebox";
import { catalog, type EventType, INGEST_TYPES } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { conflict, invalidRequest, notFound } from "../errors.js";
import { PositiveId } from "../schemas.js";
import { transact } from "../store/transaction.js";
import { parseRfc3339 } from "../time.js";
import { type Validator, validator } from "../validation.js";
import { fingerprint } from "./fingerprint.js";
import { type EventInput, fanOut, insertEvent, type Overrides } from "./raise.js";

const MAX_FUTURE_SECONDS = 24 * 60 * 60;

/** A console-relative path: one leading `/` (not `//` or `/\`, which browsers treat as a host). */
const LINK_MESSAGE =
  "must be a path that starts with a single / and has no whitespace (at most 2048 characters)";
export const Link = Type.String({
  maxLength: 2048,
  pattern: "^/(?![/\\\\])[^\\s\\x00-\\x1f\\x7f]*$",
  errorMessage: LINK_MESSAGE,
});

export const IngestRequest = Type.Object(
  {
    id: Type.String({
      pattern: "^[A-Za-z0-9._:-]{1,128}$",
      errorMessage: "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'",
    }),
    type: Type.Unsafe<EventType>(
      Type.Union(
        INGEST_TYPES.map((t) => Type.Literal(t)),
        { errorMessage: `must be one of the ingestible types: ${INGEST_TYPES.join(", ")}` },
      ),
    ),
    user_id: PositiveId,
    data: Type.Object({}),
    occurred_at: Type.Optional(Type.String({ maxLength: 64 })),
    title: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    body: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    link: Type.Optional(Type.Union([Link, Type.Null()], { errorMessage: `${LINK_MESSAGE}, or null` })),
  },
  { additionalProperties: false },
);
export type IngestRequest = Static<typeof IngestRequest>;

export const IngestResult = Type.Object({
  id: Type.String(),
  duplicate: Type.Boolean(),
  notifications: Type.Integer(),
});
export type IngestResult = Static<typeof IngestResult>;

const validateRequest = validator(IngestRequest);
const validateData: Partial<Record<EventType, Validator<TSchema>>> = Object.fromEntries(
  INGEST_TYPES.map((t) => [t, validator(catalog[t].data)]),
);

/**
 * Ingests one producer event (SPEC §6): validates it, then checks the user (404), then the
 * idempotency key — the same `id` with the same content is a duplicate, with other content a
 * conflict. Event, feed rows and counters are written in one transaction; when this resolves
 * they are committed.
 *
 * @example
 * await ingestEvent(deps, { id: "pay_1", type: "system.payment.received", user_id: 7,
 *   data: { amount_cents: 2500, balance_cents: 3140 } });
 */
export async function ingestEvent(deps: Deps, body: unknown): Promise<IngestResult> {
  const req = validateRequest.parse(body);
  validateData[req.type]?.parse(req.data, "data");
  const now = deps.clock();
  const occurredAt = req.occurred_at === undefined ? now : parseOccurredAt(req.occurred_at, now);
  const overrides: Overrides = {};
  if (req.title !== undefined) overrides.title = req.title;
  if (req.body !== undefined) overrides.body = req.body;
  if (req.link !== undefined) overrides.link = req.link;
  const content = fingerprint({
    type: req.type,
    user_id: req.user_id,
    data: req.data,
    overrides,
    occurred_at: req.occurred_at === undefined ? undefined : occurredAt,
  });
  const event: EventInput = {
    type: req.type,
    data: req.data as EventInput["data"],
    userId: req.user_id,
    occurredAt,
    createdAt: now,
    idempotencyKey: req.id,
    fingerprint: content,
    overrides: Object.keys(overrides).length > 0 ? overrides : null,
  };
  const { store } = deps;
  return transact(store, async (tx) => {
    const { trx } = tx;
    const user = await trx.selectFrom("users").select("id").where("id", "=", req.user_id).executeTakeFirst();
    if (!user) throw notFound(`No user with id ${req.user_id}.`);
    // Concurrent requests with one id: PostgreSQL makes the later ones wait here for the first
    // to commit, then do nothing; SQLite runs write transactions one at a time.
    const inserted = await insertEvent(trx, event)
      .onConflict((oc) => oc.column("idempotency_key").doNothing())
      .returning("id")
      .executeTakeFirst();
    if (inserted) {
      return {
        id: req.id,
        duplicate: false,
        notifications: await (await fanOut(tx, inserted.id, event)).notifications,
      };
    }
    const existing = await trx
      .selectFrom("events")
      .select("fingerprint")
      .where("idempotency_key", "=", req.id)
      .executeTakeFirstOrThrow();
    if (existing.fingerprint !== content) {
      throw conflict(`Event id "${req.id}" was already used for an event with different content.`);
    }
    return { id: req.id, duplicate: true, notifications: 0 };
  });
}

function parseOccurredAt(text: string, now: number): number {
  const seconds = parseRfc3339(text);
  if (seconds === undefined) {
    throw invalidRequest("occurred_at must be an RFC 3339 date-time, e.g. 2026-05-22T08:08:00Z");
  }
  if (seconds > now + MAX_FUTURE_SECONDS) {
    throw invalidRequest("occurred_at must not be more than 24 hours ahead");
  }
  if (seconds < 0) throw invalidRequest("occurred_at must not be before 1970-01-01T00:00:00Z");
  return seconds;
}
