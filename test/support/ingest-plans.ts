import fc from "fast-check";
import { type EventBody, type FeedModel, type Item, LOW_BALANCE, PAYMENT } from "./feed-model.js";
import { iso } from "./iso.js";

/**
 * Generated plans for ingest items, for the feed model suite. A plan is what fast-check generates
 * and shrinks; it becomes a concrete item (a body, what the model knows about it) only when the
 * command runs, against the model's state then — `pick` numbers choose among what exists.
 */

/** When an event happened, relative to the clock when it is sent, or one of a few fixed instants. */
type When =
  | { at: "now" }
  | { at: "ago"; s: number }
  | { at: "ahead"; s: number }
  | { at: "fixed"; i: number };

export interface Content {
  payment: boolean;
  amount: number;
  balance: number;
  receipt: string | undefined;
  when: When;
  overrides: { title?: string; body?: string; link?: string | null } | undefined;
}

/** A way to change a stored event's content while keeping its id (a 409). */
type Mutation = "data" | "user" | "title" | "occurred_at" | "link";

const BAD = [
  "amount_cents 0",
  "no data",
  "type not ingestible",
  "malformed id",
  "unknown field",
  "occurred_at not a date",
  "occurred_at 2 days ahead",
  "empty title",
  "link to another host",
  "user_id 0",
  "data an array",
] as const;

export type ItemPlan =
  | { kind: "fresh"; c: Content }
  | { kind: "repeat"; pick: number; how: "same" | "same instant" | Mutation }
  | { kind: "unknown user"; c: Content; reuse: number | undefined }
  | { kind: "invalid"; bad: (typeof BAD)[number]; reuse: number | undefined }
  /** Batch only: an item repeating an earlier item of the same batch. */
  | { kind: "in-batch repeat"; pick: number; same: boolean }
  /** Batch only: an item that is not an object at all. */
  | { kind: "not an object"; value: unknown };

/**
 * Instants written several ways: the first three are the same second (ties in `created_at` are
 * broken by id), with an offset and with a fraction that is truncated.
 */
const FIXED = [
  "2026-01-01T00:00:00Z",
  "2026-01-01T02:00:00+02:00",
  "2026-01-01T00:00:00.999Z",
  "2025-12-31T23:59:59Z",
];
const instant = (text: string) => Math.floor(Date.parse(text) / 1000);

const contentArb: fc.Arbitrary<Content> = fc.record({
  payment: fc.boolean(),
  amount: fc.integer({ min: 1, max: 1_000_000_000 }),
  balance: fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }),
  receipt: fc.option(fc.constantFrom("ch_1", "ch_3PYj-mock-49", "reçu №7"), { nil: undefined }),
  when: fc.oneof(
    { weight: 3, arbitrary: fc.constant({ at: "now" as const }) },
    {
      weight: 2,
      arbitrary: fc.record({ at: fc.constant("ago" as const), s: fc.integer({ min: 0, max: 90 * 86_400 }) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ at: fc.constant("ahead" as const), s: fc.integer({ min: 1, max: 3600 }) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ at: fc.constant("fixed" as const), i: fc.nat({ max: FIXED.length - 1 }) }),
    },
  ),
  overrides: fc.option(
    fc.record(
      {
        title: fc.oneof(
          fc.string({ minLength: 1, maxLength: 20 }),
          fc.constantFrom("Rechnung · €5", "到账 ✓"),
        ),
        body: fc.string({ minLength: 1, maxLength: 40 }),
        link: fc.constantFrom(null, "/billing/42", "/x?y=1#z"),
      },
      { requiredKeys: [] },
    ),
    { nil: undefined, freq: 4 },
  ),
});

const reuseArb = fc.option(fc.nat(), { nil: undefined });

/** Items for single ingest. */
export const singleItemArb: fc.Arbitrary<ItemPlan> = fc.oneof(
  { weight: 6, arbitrary: contentArb.map((c) => ({ kind: "fresh" as const, c })) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("repeat" as const),
      pick: fc.nat(),
      how: fc.constantFrom(
        "same",
        "same instant",
        "data",
        "user",
        "title",
        "occurred_at",
        "link",
      ) as fc.Arbitrary<"same" | Mutation>,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("unknown user" as const), c: contentArb, reuse: reuseArb }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("invalid" as const),
      bad: fc.constantFrom(...BAD),
      reuse: reuseArb,
    }),
  },
);

/** Items for batch ingest: the single kinds, repeats within the batch, and non-objects. */
export const batchItemArb: fc.Arbitrary<ItemPlan> = fc.oneof(
  { weight: 8, arbitrary: singleItemArb },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("in-batch repeat" as const),
      pick: fc.nat(),
      same: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("not an object" as const),
      value: fc.constantFrom(42, null, "event", [], true),
    }),
  },
);

export function describePlan(p: ItemPlan): string {
  switch (p.kind) {
    case "fresh":
    case "unknown user": {
      const c = p.c;
      const w =
        c.when.at === "fixed" ? FIXED[c.when.i] : c.when.at === "now" ? "now" : `${c.when.at} ${c.when.s}s`;
      const what = c.payment
        ? `payment ${c.amount}/${c.balance}`
        : `low balance ${c.balance}/${c.amount - 1}`;
      const extra = `${c.receipt ? ` receipt ${c.receipt}` : ""}${c.overrides ? ` overrides ${JSON.stringify(c.overrides)}` : ""}`;
      return `${p.kind} ${what} at ${w}${extra}${"reuse" in p && p.reuse !== undefined ? ` reusing id #${p.reuse}` : ""}`;
    }
    case "repeat":
      return `repeat of event #${p.pick} (${p.how})`;
    case "invalid":
      return `invalid (${p.bad})${p.reuse !== undefined ? ` reusing id #${p.reuse}` : ""}`;
    case "in-batch repeat":
      return `repeat of batch item #${p.pick} (${p.same ? "same" : "changed"})`;
    case "not an object":
      return `not an object (${JSON.stringify(p.value)})`;
  }
}

let fresh = 0;
const freshId = () => `evt.${process.pid}.${++fresh}`;

function build(
  c: Content,
  id: string,
  userId: number,
  now: number,
): { body: EventBody; createdAt: number | undefined } {
  const data: Record<string, unknown> = c.payment
    ? {
        amount_cents: c.amount,
        balance_cents: c.balance,
        ...(c.receipt !== undefined && { receipt: c.receipt }),
      }
    : { balance_cents: c.balance, threshold_cents: c.amount - 1 };
  const w = c.when;
  const [text, createdAt] =
    w.at === "now"
      ? [undefined, undefined]
      : w.at === "fixed"
        ? [FIXED[w.i] as string, instant(FIXED[w.i] as string)]
        : [iso(w.at === "ago" ? now - w.s : now + w.s), w.at === "ago" ? now - w.s : now + w.s];
  const body: EventBody = {
    id,
    type: c.payment ? PAYMENT : LOW_BALANCE,
    user_id: userId,
    data,
    ...c.overrides,
  };
  if (text !== undefined) body.occurred_at = text;
  return { body, createdAt };
}

function mutate(item: Item & { kind: "valid" }, how: Mutation, m: FeedModel, now: number): Item {
  const body: EventBody = structuredClone(item.body);
  let createdAt = item.createdAt;
  if (how === "data") {
    const field = body.type === PAYMENT ? "amount_cents" : "threshold_cents";
    body.data[field] = (body.data[field] as number) + 1;
  } else if (how === "user") {
    body.user_id = m.userIds[(m.owner(body.user_id) + 1) % m.userIds.length] as number;
  } else if (how === "title") {
    body.title = `${body.title ?? "T"}!`;
  } else if (how === "link") {
    body.link = body.link === "/x" ? null : "/x";
  } else {
    createdAt = createdAt === undefined ? now - 5 : createdAt + 1;
    body.occurred_at = iso(createdAt);
  }
  return { kind: "valid", body, createdAt };
}

/** The id of an existing event chosen by `pick`, or a fresh one when there is none. */
function existingId(m: FeedModel, pick: number | undefined): string {
  const ids = [...m.events.keys()];
  return pick === undefined || ids.length === 0 ? freshId() : (ids[pick % ids.length] as string);
}

function invalid(bad: (typeof BAD)[number], id: string, userId: number, now: number): unknown {
  const ok = { id, type: PAYMENT, user_id: userId, data: { amount_cents: 100, balance_cents: 100 } };
  switch (bad) {
    case "amount_cents 0":
      return { ...ok, data: { amount_cents: 0, balance_cents: 1 } };
    case "no data":
      return { id, type: PAYMENT, user_id: userId };
    case "type not ingestible":
      return { ...ok, type: "admin.api_key.revoke" };
    case "malformed id":
      return { ...ok, id: "bad id!" };
    case "unknown field":
      return { ...ok, foo: 1 };
    case "occurred_at not a date":
      return { ...ok, occurred_at: "yesterday" };
    case "occurred_at 2 days ahead":
      return { ...ok, occurred_at: iso(now + 2 * 86_400) };
    case "empty title":
      return { ...ok, title: "" };
    case "link to another host":
      return { ...ok, link: "//evil.example/x" };
    case "user_id 0":
      return { ...ok, user_id: 0 };
    case "data an array":
      return { ...ok, data: [] };
  }
}

/**
 * Turns a plan into an item for `userId` against the model's state now; `earlier` holds the items
 * already placed in the same batch.
 */
export function resolvePlan(
  p: ItemPlan,
  userId: number,
  m: FeedModel,
  now: number,
  earlier: Item[] = [],
): Item {
  switch (p.kind) {
    case "fresh":
      return { kind: "valid", ...build(p.c, freshId(), userId, now) };
    case "unknown user":
      return { kind: "unknown-user", body: build(p.c, existingId(m, p.reuse), 999_999_999, now).body };
    case "invalid":
      return { kind: "invalid", body: invalid(p.bad, existingId(m, p.reuse), userId, now), why: p.bad };
    case "not an object":
      return { kind: "invalid", body: p.value, why: "not an object" };
    case "repeat": {
      const events = [...m.events.values()];
      const known = events[p.pick % Math.max(events.length, 1)];
      if (!known) return { kind: "valid", ...build(DEFAULT_CONTENT, freshId(), userId, now) };
      if (p.how === "same") return known.item;
      if (p.how === "same instant") return sameInstant(known.item);
      return mutate(known.item, p.how, m, now);
    }
    case "in-batch repeat": {
      const valid = earlier.filter((i): i is Item & { kind: "valid" } => i.kind === "valid");
      const first = valid[p.pick % Math.max(valid.length, 1)];
      if (!first) return { kind: "valid", ...build(DEFAULT_CONTENT, freshId(), userId, now) };
      return p.same ? first : mutate(first, "data", m, now);
    }
  }
}

/** The same content with `occurred_at` written at a +02:00 offset: still a duplicate. */
function sameInstant(item: Item & { kind: "valid" }): Item {
  if (item.createdAt === undefined) return item;
  const local = iso(item.createdAt + 7200).slice(0, 19);
  return { ...item, body: { ...item.body, occurred_at: `${local}+02:00` } };
}

const DEFAULT_CONTENT: Content = {
  payment: true,
  amount: 2500,
  balance: 3140,
  receipt: undefined,
  when: { at: "now" },
  overrides: undefined,
};
