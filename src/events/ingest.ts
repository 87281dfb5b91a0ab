import { type Static, type TSchema, Type } from "typebox";
import { catalog, type EventType, INGEST_TYPES } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { ApiError, conflict, invalidRequest, notFound } from "../errors.js";
import { PositiveId, StringEnum } from "../schemas.js";
import { insertMany } from "../store/insert-many.js";
import { type Tx, transact } from "../store/transaction.js";
import { parseRfc3339 } from "../time.js";
import { type Validator, validator } from "../validation.js";
import { fanOut, type RecordedEvent } from "./fan-out.js";
import { fingerprint } from "./fingerprint.js";
import { EVENT_COLUMNS, type EventInput, eventRow, type Overrides } from "./raise.js";

const MAX_FUTURE_SECONDS = 24 * 60 * 60;
/** Rows per multi-row statement, far below both backends' bound-parameter limits. */
const CHUNK = 500;

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
    type: StringEnum(INGEST_TYPES, {
      errorMessage: `must be one of the ingestible types: ${INGEST_TYPES.join(", ")}`,
    }),
    user_id: PositiveId,
    data: Type.Object(
      {},
      {
        description:
          "The event's data, checked against its type's schema in the catalog (extra fields are kept).",
      },
    ),
    occurred_at: Type.Optional(
      Type.String({
        maxLength: 64,
        description:
          "RFC 3339 with any offset (default now), normalised to UTC, fractions truncated; at most 24 h ahead. Becomes the notification's created_at.",
      }),
    ),
    title: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: "Overrides the rendered title." }),
    ),
    body: Type.Optional(
      Type.String({ minLength: 1, maxLength: 2000, description: "Overrides the rendered body." }),
    ),
    link: Type.Optional(Type.Union([Link, Type.Null()], { errorMessage: `${LINK_MESSAGE}, or null` })),
  },
  {
    additionalProperties: false,
    examples: INGEST_TYPES.map((type, i) => ({
      id: `evt-${1001 + i}`,
      type,
      user_id: 7,
      data: catalog[type].example,
    })),
  },
);
export type IngestRequest = Static<typeof IngestRequest>;

export const IngestResult = Type.Object(
  {
    id: Type.String(),
    duplicate: Type.Boolean({ description: "true: this id was already ingested with the same content." }),
    notifications: Type.Integer({
      description: "Feed rows this call created (0 when muted or a duplicate).",
    }),
  },
  { examples: [{ id: "evt-1001", duplicate: false, notifications: 1 }] },
);
export type IngestResult = Static<typeof IngestResult>;

const validateRequest = validator(IngestRequest);
const validateData: Partial<Record<EventType, Validator<TSchema>>> = Object.fromEntries(
  INGEST_TYPES.map((t) => [t, validator(catalog[t].data)]),
);

export const MAX_BATCH = 1000;
export const IngestBatchRequest = Type.Object(
  {
    events: Type.Array(
      Type.Unknown({
        description:
          "An event exactly as POST /admin/v1/events takes it. Each is checked on its own: one that fails is reported in its place in `results`, and the others land.",
      }),
      { minItems: 1, maxItems: MAX_BATCH },
    ),
  },
  {
    additionalProperties: false,
    examples: [
      {
        events: INGEST_TYPES.map((type, i) => ({
          id: `evt-${1001 + i}`,
          type,
          user_id: 7,
          data: catalog[type].example,
        })),
      },
    ],
  },
);
/** What a batch item can fail with: its own validation, an unknown user, a reused id. */
const ITEM_ERROR_TYPES = ["invalid_request_error", "not_found_error", "conflict_error"] as const;
const BatchItemError = Type.Object({
  id: Type.Union([Type.String(), Type.Null()], {
    description: "The item's id, or null when it had no string id.",
  }),
  error: Type.Object({
    type: StringEnum(ITEM_ERROR_TYPES),
    message: Type.String({ description: "Starts with events[i]:, the item's index." }),
  }),
});
export const IngestBatchResult = Type.Object({
  results: Type.Array(Type.Union([IngestResult, BatchItemError])),
});
export type IngestBatchResult = Static<typeof IngestBatchResult>;
const validateBatch = validator(IngestBatchRequest);

/** An ingest request that passed validation: the event to record and its content fingerprint. */
interface Prepared {
  id: string;
  event: EventInput & { idempotencyKey: string; fingerprint: string; userId: number };
}

/** Validates one request body (400s) and turns it into the event to record. */
function prepare(body: unknown, now: number): Prepared {
  const req = validateRequest.parse(body);
  validateData[req.type]?.parse(req.data, "data");
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
  return {
    id: req.id,
    event: {
      type: req.type,
      data: req.data as EventInput["data"],
      userId: req.user_id,
      occurredAt,
      createdAt: now,
      idempotencyKey: req.id,
      fingerprint: content,
      overrides: Object.keys(overrides).length > 0 ? overrides : null,
    },
  };
}

type Outcome = IngestResult | ApiError;

/**
 * Records prepared events in the caller's transaction, in order: for each, the user must exist
 * (404), then the id — new, a duplicate (same content), or a conflict (409). New events are fanned
 * out together. Checks that fail are returned as errors; nothing here fails the transaction.
 */
async function apply(tx: Tx, items: Prepared[]): Promise<Outcome[]> {
  const { trx } = tx;
  const userIds = [...new Set(items.map((p) => p.event.userId))];
  const users = new Set(
    (await trx.selectFrom("users").select("id").where("id", "in", userIds).execute()).map((u) => u.id),
  );
  const known = items.filter((p) => users.has(p.event.userId));
  // Every new id is inserted; an id already taken (or repeated in this batch) is skipped. With
  // concurrent requests for one id, PostgreSQL makes the later ones wait here for the first to
  // commit, then skip; SQLite runs write transactions one at a time.
  const inserted = new Map<string, number>();
  const rows = await insertMany<ReturnType<typeof eventRow>, { id: number; idempotency_key: string }>(tx, {
    table: "events",
    columns: EVENT_COLUMNS,
    rows: known.map((p) => eventRow(p.event)),
    skipConflictsOn: "idempotency_key",
    returning: ["id", "idempotency_key"],
  });
  for (const r of rows) inserted.set(r.idempotency_key, Number(r.id));
  const taken = known.filter((p) => !inserted.has(p.id)).map((p) => p.id);
  const fingerprints = new Map<string, string | null>();
  for (let i = 0; i < taken.length; i += CHUNK) {
    const rows = await trx
      .selectFrom("events")
      .select(["idempotency_key", "fingerprint"])
      .where("idempotency_key", "in", taken.slice(i, i + CHUNK))
      .execute();
    for (const r of rows) fingerprints.set(r.idempotency_key ?? "", r.fingerprint);
  }
  const outcomes: Outcome[] = [];
  const recorded: RecordedEvent[] = [];
  const fresh: number[] = [];
  for (const p of items) {
    const eventId = inserted.get(p.id);
    if (!users.has(p.event.userId)) {
      outcomes.push(notFound(`No user with id ${p.event.userId}.`));
    } else if (eventId !== undefined) {
      inserted.delete(p.id); // a repeat of this id later in the batch compares with this one
      fingerprints.set(p.id, p.event.fingerprint);
      recorded.push({ id: eventId, input: p.event });
      fresh.push(outcomes.length);
      outcomes.push({ id: p.id, duplicate: false, notifications: 0 });
    } else {
      outcomes.push(
        fingerprints.get(p.id) === p.event.fingerprint
          ? { id: p.id, duplicate: true, notifications: 0 }
          : conflict(`Event id "${p.id}" was already used for an event with different content.`),
      );
    }
  }
  const added = await fanOut(tx, recorded);
  fresh.forEach((index, i) => {
    (outcomes[index] as IngestResult).notifications = added[i] ?? 0;
  });
  return outcomes;
}

/**
 * Ingests one producer event: validates it, then checks the user (404), then the
 * idempotency key — the same `id` with the same content is a duplicate, with other content a
 * conflict. Event, feed rows, counters and webhook deliveries are written in one transaction;
 * when this resolves they are committed.
 *
 * @example
 * await ingestEvent(deps, { id: "pay_1", type: "system.payment.received", user_id: 7,
 *   data: { amount_cents: 2500, balance_cents: 3140 } });
 */
export async function ingestEvent(deps: Deps, body: unknown): Promise<IngestResult> {
  const prepared = prepare(body, deps.clock());
  const [outcome] = await transact(deps.store, (tx) => apply(tx, [prepared]));
  if (outcome instanceof ApiError || outcome === undefined) throw outcome;
  countIngested(deps, [outcome]);
  return outcome;
}

/** Counts committed events for the metrics: created, or a repeat of an id (duplicate). */
function countIngested(deps: Deps, outcomes: readonly Outcome[]): void {
  for (const outcome of outcomes) {
    if (outcome instanceof ApiError) continue;
    deps.metrics.eventsIngested.inc({ result: outcome.duplicate ? "duplicate" : "created" });
  }
}

/**
 * Ingests up to 1,000 events in one transaction (`POST /admin/v1/events/batch`). Each item is
 * checked as `ingestEvent` checks it; an item that fails is reported in its place
 * (`{id, error: {type, message}}`) and the others land. When this resolves every landed event is
 * committed.
 */
export async function ingestBatch(deps: Deps, body: unknown): Promise<IngestBatchResult> {
  const { events } = validateBatch.parse(body);
  const now = deps.clock();
  const results: (Outcome | undefined)[] = [];
  const valid: Prepared[] = [];
  const slots: number[] = [];
  events.forEach((item, index) => {
    try {
      valid.push(prepare(item, now));
      slots.push(index);
      results.push(undefined);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      results.push(new ApiError(error.status, error.type, `events[${index}]: ${error.message}`));
    }
  });
  if (valid.length > 0) {
    const outcomes = await transact(deps.store, (tx) => apply(tx, valid));
    countIngested(deps, outcomes);
    outcomes.forEach((outcome, i) => {
      const slot = slots[i] as number;
      // Unknown users and conflicts name their item like validation failures do.
      results[slot] =
        outcome instanceof ApiError
          ? new ApiError(outcome.status, outcome.type, `events[${slot}]: ${outcome.message}`)
          : outcome;
    });
  }
  return {
    results: results.map((r, index) => {
      if (r === undefined || !(r instanceof ApiError)) return r as IngestResult;
      const id = (events[index] as { id?: unknown } | null)?.id;
      return {
        id: typeof id === "string" ? id : null,
        error: { type: r.type as (typeof ITEM_ERROR_TYPES)[number], message: r.message },
      };
    }),
  };
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
