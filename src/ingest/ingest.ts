import type { Overrides } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { ApiError, conflict, invalidRequest, notFound } from "../errors.js";
import { claimEventKeys, fingerprintsOf } from "../events/event-keys.js";
import { EVENT_COLUMNS, type EventInput, eventRow, type RecordedEvent } from "../events/event-row.js";
import { fanOut } from "../events/fan-out.js";
import { memberDirectory } from "../identity/memberships.js";
import { existingUserIds } from "../identity/users.js";
import { GroupCommit } from "../store/group-commit.js";
import { insertMany } from "../store/insert-many.js";
import { type Tx, transact } from "../store/transaction.js";
import { parseRfc3339 } from "../time.js";
import { fingerprint } from "./fingerprint.js";
import {
  type IngestBatchResult,
  type IngestResult,
  type ITEM_ERROR_TYPES,
  validateBatch,
  validateData,
  validateRequest,
} from "./ingest-request.js";

const MAX_FUTURE_SECONDS = 24 * 60 * 60;

/** An ingest request that passed validation: the event to record and its content fingerprint. */
interface ValidIngest {
  id: string;
  fingerprint: string;
  event: EventInput & { idempotencyKey: string; userId: number };
}

/** Validates one request body (400s) and turns it into the event to record. */
function parseIngest(body: unknown, now: number): ValidIngest {
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
    fingerprint: content,
    event: {
      type: req.type,
      data: req.data as EventInput["data"],
      userId: req.user_id,
      occurredAt,
      createdAt: now,
      idempotencyKey: req.id,
      overrides: Object.keys(overrides).length > 0 ? overrides : null,
    },
  };
}

type Outcome = IngestResult | ApiError;

/** The first item of each producer id, in order (a batch may repeat an id). */
function firstOfEach(items: ValidIngest[]): ValidIngest[] {
  const seen = new Set<string>();
  return items.filter((p) => !seen.has(p.id) && seen.add(p.id));
}

/**
 * Records validated events in the caller's transaction, in order: for each, the user must exist
 * (404), then the id — new, a duplicate (same content), or a conflict (409). New events are fanned
 * out together. Checks that fail are returned as errors; nothing here fails the transaction.
 */
async function recordIngested(tx: Tx, items: ValidIngest[]): Promise<Outcome[]> {
  const { trx } = tx;
  const userIds = [...new Set(items.map((p) => p.event.userId))];
  const users = await existingUserIds(trx, userIds);
  const known = items.filter((p) => users.has(p.event.userId));
  const newIds = await claimEventKeys(
    tx,
    known.map((p) => ({ idempotency_key: p.id, fingerprint: p.fingerprint })),
  );
  const inserted = new Map<string, number>();
  const rows = await insertMany<ReturnType<typeof eventRow>, { id: number; idempotency_key: string }>(tx, {
    table: "events",
    columns: EVENT_COLUMNS,
    rows: firstOfEach(known.filter((p) => newIds.has(p.id))).map((p) => eventRow(p.event)),
    returning: ["id", "idempotency_key"],
  });
  for (const r of rows) inserted.set(r.idempotency_key, Number(r.id));
  const fingerprints = await fingerprintsOf(
    trx,
    known.filter((p) => !newIds.has(p.id)).map((p) => p.id),
  );
  const outcomes: Outcome[] = [];
  const recorded: RecordedEvent[] = [];
  const fresh: number[] = [];
  for (const p of items) {
    const eventId = inserted.get(p.id);
    if (!users.has(p.event.userId)) {
      outcomes.push(notFound(`No user with id ${p.event.userId}.`));
    } else if (eventId !== undefined) {
      inserted.delete(p.id); // a repeat of this id later in the batch compares with this one
      fingerprints.set(p.id, p.fingerprint);
      recorded.push({ id: eventId, input: p.event });
      fresh.push(outcomes.length);
      outcomes.push({ id: p.id, duplicate: false, notifications: 0 });
    } else {
      outcomes.push(
        fingerprints.get(p.id) === p.fingerprint
          ? { id: p.id, duplicate: true, notifications: 0 }
          : conflict(`Event id "${p.id}" was already used for an event with different content.`),
      );
    }
  }
  const added = await fanOut(tx, memberDirectory(trx), recorded);
  fresh.forEach((index, i) => {
    (outcomes[index] as IngestResult).notifications = added[i] ?? 0;
  });
  return outcomes;
}

/**
 * Ingests one producer event: validates it, then checks the user (404), then the
 * idempotency key — the same `id` with the same content is a duplicate, with other content a
 * conflict. Event, feed rows, counters and webhook deliveries are written in one transaction,
 * which concurrent single ingests share (group commit, see `GroupCommit`); when this resolves
 * they are committed.
 *
 * @example
 * await ingestEvent(deps, { id: "pay_1", type: "system.payment.received", user_id: 7,
 *   data: { amount_cents: 2500, balance_cents: 3140 } });
 */
export async function ingestEvent(deps: Deps, body: unknown): Promise<IngestResult> {
  const valid = parseIngest(body, deps.clock());
  const outcome = await gathererOf(deps).submit(valid);
  if (outcome instanceof ApiError) throw outcome;
  countIngested(deps, [outcome]);
  return outcome;
}

/** Each Deps' gatherer of single ingests (one per store and process). */
const gatherers = new WeakMap<Deps, GroupCommit<ValidIngest, Outcome>>();

/**
 * The gatherer that makes concurrent single ingests share a transaction (group commit): each
 * request still gets its own outcome, only after the commit that carried it.
 */
function gathererOf(deps: Deps): GroupCommit<ValidIngest, Outcome> {
  let gatherer = gatherers.get(deps);
  if (gatherer === undefined) {
    gatherer = new GroupCommit(deps.store, {
      run: recordInKeyOrder,
      committed: (size) => deps.metrics.groupCommitSize.observe({ operation: "ingest" }, size),
    });
    gatherers.set(deps, gatherer);
  }
  return gatherer;
}

/**
 * {@link recordIngested} with the items taken in id order (a repeated id keeps its place among
 * its repeats), so groups running side by side — other instances' on one PostgreSQL — insert
 * idempotency keys, and so lock them, in the same order and cannot deadlock over two of them;
 * the outcomes come back in the items' order.
 */
async function recordInKeyOrder(tx: Tx, items: readonly ValidIngest[]): Promise<Outcome[]> {
  const order = items.map((_, i) => i);
  const idOf = (i: number) => (items[i] as ValidIngest).id;
  order.sort((a, b) => (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : a - b));
  const outcomes = await recordIngested(
    tx,
    order.map((i) => items[i] as ValidIngest),
  );
  const inPlace: Outcome[] = new Array(items.length);
  order.forEach((i, k) => {
    inPlace[i] = outcomes[k] as Outcome;
  });
  return inPlace;
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
  const valid: ValidIngest[] = [];
  const slots: number[] = [];
  events.forEach((item, index) => {
    try {
      valid.push(parseIngest(item, now));
      slots.push(index);
      results.push(undefined);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      results.push(new ApiError(error.status, error.type, `events[${index}]: ${error.message}`));
    }
  });
  if (valid.length > 0) {
    const outcomes = await transact(deps.store, (tx) => recordIngested(tx, valid));
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
