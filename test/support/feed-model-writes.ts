import { expect } from "vitest";
import { FEED_TYPES, type FeedModel, type Item, type ItemOutcome } from "./feed-model.js";
import { type Cmd, checkAll, expectEnvelope, FEED, type Real, send, tick } from "./feed-model-real.js";
import { ADMIN_TOKEN } from "./harness.js";
import { describePlan, type ItemPlan, resolvePlan } from "./ingest-plans.js";
import { iso } from "./iso.js";

/** The feed model suite's commands that change state: ingest, batch ingest, mark read, mutes. */

/** What a batch answers in an item's place. */
function batchResult(item: Item, outcome: ItemOutcome, index: number) {
  if (!("error" in outcome)) return outcome;
  const id = (item.body as { id?: unknown } | null)?.id;
  return {
    id: typeof id === "string" ? id : null,
    error: {
      type: outcome.error.type,
      message: expect.stringMatching(new RegExp(`^events\\[${index}\\]: `)),
    },
  };
}

export class Ingest implements Cmd {
  constructor(
    readonly user: number,
    readonly plan: ItemPlan,
  ) {}
  check = () => true;
  async run(m: FeedModel, r: Real) {
    const t = tick();
    const item = resolvePlan(this.plan, r.users[this.user]!.id, m, t);
    const before = m.rows.length;
    const expected = m.ingest(item, t);
    const res = await send(r, "POST", "/admin/v1/events", ADMIN_TOKEN, item.body);
    if ("error" in expected) expectEnvelope(res, expected.error.status, expected.error.type);
    else {
      expect(res.status, res.text).toBe(202);
      expect(res.json).toEqual(expected);
    }
    m.changed(m.rows.slice(before).map((row) => row.owner));
    await checkAll(m, r);
  }
  toString = () => `ingest(user ${this.user}: ${describePlan(this.plan)})`;
}

export class Batch implements Cmd {
  constructor(
    readonly user: number,
    readonly plans: ItemPlan[],
  ) {}
  check = () => true;
  async run(m: FeedModel, r: Real) {
    const t = tick();
    const before = m.rows.length;
    // Items are resolved in order, each against the model as the batch's earlier items left it.
    const items: Item[] = [];
    const outcomes: ItemOutcome[] = [];
    for (const p of this.plans) {
      const item = resolvePlan(p, r.users[this.user]!.id, m, t, items);
      items.push(item);
      outcomes.push(m.ingest(item, t));
    }
    const res = await send(r, "POST", "/admin/v1/events/batch", ADMIN_TOKEN, {
      events: items.map((i) => i.body),
    });
    if (items.length === 0) expectEnvelope(res, 400, "invalid_request_error");
    else {
      expect(res.status, res.text).toBe(202);
      expect(res.json).toEqual({ results: items.map((item, i) => batchResult(item, outcomes[i]!, i)) });
    }
    m.changed(m.rows.slice(before).map((row) => row.owner));
    await checkAll(m, r);
  }
  toString = () => `batch(user ${this.user}: [${this.plans.map(describePlan).join("; ")}])`;
}

export type Target =
  | { kind: "own" | "foreign"; pick: number }
  | { kind: "missing" }
  | { kind: "malformed"; text: string };

export class MarkRead implements Cmd {
  constructor(
    readonly user: number,
    readonly target: Target,
  ) {}
  check = () => true;
  async run(m: FeedModel, r: Real) {
    const t = tick();
    const target = this.target;
    const pool =
      target.kind === "own"
        ? m.rowsOf(this.user)
        : target.kind === "foreign"
          ? m.rows.filter((row) => row.owner !== this.user)
          : [];
    const row = "pick" in target ? pool[target.pick % Math.max(pool.length, 1)] : undefined;
    const path = target.kind === "malformed" ? target.text : String(row?.id ?? 10 ** 12);
    const res = await send(r, "POST", `${FEED}/${path}/mark-read`, r.users[this.user]!.key);
    if (target.kind === "own" && row) {
      if (row.readAt === null) {
        row.readAt = t;
        m.changed([this.user]);
      }
      expect(res.status, res.text).toBe(200);
      expect(res.json).toEqual({ id: row.id, type: row.type, read_at: iso(row.readAt) });
    } else expectEnvelope(res, 404, "not_found_error");
    await checkAll(m, r);
  }
  toString = () => `markRead(user ${this.user}: ${JSON.stringify(this.target)})`;
}

export class MarkAllRead implements Cmd {
  constructor(readonly user: number) {}
  check = () => true;
  async run(m: FeedModel, r: Real) {
    const t = tick();
    const res = await send(r, "POST", `${FEED}/mark-all-read`, r.users[this.user]!.key);
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({ marked_read: m.markAllRead(this.user, t) });
    await checkAll(m, r);
  }
  toString = () => `markAllRead(user ${this.user})`;
}

export class Mute implements Cmd {
  constructor(
    readonly user: number,
    readonly types: string[],
  ) {}
  check = () => true;
  async run(m: FeedModel, r: Real) {
    tick();
    const res = await send(r, "PUT", "/api/v1/me/notification-settings", r.users[this.user]!.key, {
      muted_types: this.types,
    });
    if (this.types.every((t) => (FEED_TYPES as readonly string[]).includes(t))) {
      m.muted[this.user] = [...new Set(this.types)];
      expect(res.status, res.text).toBe(200);
      expect(res.json).toEqual({ muted_types: m.muted[this.user] });
    } else expectEnvelope(res, 400, "invalid_request_error");
    await checkAll(m, r);
  }
  toString = () => `mute(user ${this.user}: ${JSON.stringify(this.types)})`;
}
