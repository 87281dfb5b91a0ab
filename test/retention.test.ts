import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prunePass } from "../src/retention/prune.js";
import { startRetention } from "../src/retention/scheduler.js";
import { BACKENDS } from "./support/backends.js";
import { type Harness, startHarness } from "./support/harness.js";

const DAY = 86_400;
const data = { amount_cents: 100, balance_cents: 100 };

describe.each(BACKENDS)("retention on %s", (backend) => {
  let h: Harness;
  let now = 1_800_000_000;
  beforeAll(async () => {
    h = await startHarness(backend, {
      clock: () => now,
      clockMs: () => now * 1000,
      resolve: async () => [{ address: "93.184.216.34", family: 4 }],
    });
  });
  afterAll(() => h.close());

  const get = (url: string, key: string) => h.request("GET", url, { key });
  /** The user's rows and unread rows counted from the table itself, not from the counters. */
  const recount = async (userId: number) => {
    const rows = await h.store.db
      .selectFrom("notifications")
      .select(["id", "read_at"])
      .where("user_id", "=", userId)
      .execute();
    return rows;
  };

  it("deletes rows older than the window in batches; counts, totals and ETags stay exact", async () => {
    const u = await h.userWithKey();
    now = 1_800_000_000 - 40 * DAY;
    for (let i = 0; i < 7; i++) expect((await h.pay(u.id, `old-${u.id}-${i}`, data)).status).toBe(202);
    // One old row read on its own, then a mark-all-read covering the old rows.
    const oldList = await get("/api/v1/me/notifications", u.key);
    await h.request("POST", `/api/v1/me/notifications/${oldList.json.items[0].id}/mark-read`, { key: u.key });
    now = 1_800_000_000 - 35 * DAY;
    await h.request("POST", "/api/v1/me/notifications/mark-all-read", { key: u.key });
    now = 1_800_000_000;
    for (let i = 0; i < 3; i++) expect((await h.pay(u.id, `new-${u.id}-${i}`, data)).status).toBe(202);
    const before = await get("/api/v1/me/notifications", u.key);
    expect(before.json.total).toBe(10);

    const result = await prunePass(h.deps, 30, { batchSize: 3 });
    expect(result.notifications).toBe(7);
    expect(result.events).toBe(7);

    const rows = await recount(u.id);
    expect(rows).toHaveLength(3);
    const list = await get("/api/v1/me/notifications", u.key);
    expect(list.json.total).toBe(3);
    expect(list.json.items.map((n: { id: number }) => n.id).sort()).toEqual(rows.map((r) => r.id).sort());
    expect(list.headers.etag).not.toBe(before.headers.etag);
    const unread = await get("/api/v1/me/notifications/unread-count", u.key);
    expect(unread.json.count).toBe(3);
    expect((await get("/api/v1/me/notifications?read=true", u.key)).json.total).toBe(0);
    // The read marks covering only deleted rows are gone.
    const marks = await h.store.db
      .selectFrom("feed_read_marks")
      .selectAll()
      .where("user_id", "=", u.id)
      .execute();
    expect(marks).toEqual([]);
    // An old idempotency key is free again: the re-post is a new event.
    const again = await h.pay(u.id, `old-${u.id}-0`, data);
    expect(again.json.duplicate).toBe(false);
    expect((await get("/api/v1/me/notifications/unread-count", u.key)).json.count).toBe(4);

    // A second pass finds nothing, and changes no feed.
    const etag = (await get("/api/v1/me/notifications", u.key)).headers.etag;
    expect(await prunePass(h.deps, 30)).toEqual({
      notifications: 0,
      webhook_deliveries: 0,
      webhook_attempts: 0,
      events: 0,
    });
    expect((await get("/api/v1/me/notifications", u.key)).headers.etag).toBe(etag);
  });

  it("lets ingest run while a pass works through many batches", async () => {
    const u = await h.userWithKey();
    now = 1_800_000_000 - 60 * DAY;
    for (let i = 0; i < 20; i++) await h.pay(u.id, `bulk-${u.id}-${i}`, data);
    now = 1_800_000_000;
    const [result, ...ingests] = await Promise.all([
      prunePass(h.deps, 30, { batchSize: 2 }),
      ...Array.from({ length: 5 }, (_, i) => h.pay(u.id, `during-${u.id}-${i}`, data)),
    ]);
    expect(result?.notifications).toBeGreaterThanOrEqual(20);
    expect(ingests.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    const rows = await recount(u.id);
    expect(rows).toHaveLength(5);
    expect((await get("/api/v1/me/notifications/unread-count", u.key)).json.count).toBe(5);
    expect((await get("/api/v1/me/notifications", u.key)).json.total).toBe(5);
  });

  it("deletes finished deliveries and their events, keeps waiting ones with theirs", async () => {
    const u = await h.userWithKey();
    const hook = async () =>
      (
        await h.request("POST", "/api/v1/me/webhooks", {
          key: u.key,
          body: { url: "https://hooks.example.com/x" },
        })
      ).json.id as number;
    now = 1_800_000_000 - 50 * DAY;
    const gone = await hook();
    const kept = await hook();
    for (let i = 0; i < 4; i++) await h.pay(u.id, `d-${u.id}-${i}`, data);
    // Deleting an endpoint cancels its deliveries: finished, 50 days ago.
    expect((await h.request("DELETE", `/api/v1/me/webhooks/${gone}`, { key: u.key })).status).toBeLessThan(
      300,
    );
    now = 1_800_000_000;
    const result = await prunePass(h.deps, 30, { batchSize: 3 });
    expect(result.webhook_deliveries).toBe(4);
    expect(result.notifications).toBeGreaterThanOrEqual(4);
    const left = await h.store.db
      .selectFrom("webhook_deliveries")
      .select(["endpoint_id", "status", "event_id"])
      .where("user_id", "=", u.id)
      .where("endpoint_id", "in", [gone, kept])
      .execute();
    expect(left.map((d) => [d.endpoint_id, d.status])).toEqual(Array(4).fill([kept, "pending"]));
    // Their events stay while a delivery still refers to them.
    const events = await h.store.db
      .selectFrom("events")
      .select("id")
      .where(
        "id",
        "in",
        left.map((d) => d.event_id),
      )
      .execute();
    expect(events).toHaveLength(4);
    const counters = await h.store.db
      .selectFrom("webhook_delivery_counters")
      .select(["endpoint_id", "status", "count"])
      .where("user_id", "=", u.id)
      .where("endpoint_id", "in", [gone, kept])
      .where("count", "!=", 0)
      .execute();
    expect(counters.map((c) => [c.endpoint_id, c.status, Number(c.count)])).toEqual([[kept, "pending", 4]]);
  });

  it("runs a pass as soon as the scheduler starts, and stops cleanly", async () => {
    const u = await h.userWithKey();
    now = 1_800_000_000 - 45 * DAY;
    for (let i = 0; i < 3; i++) await h.pay(u.id, `s-${u.id}-${i}`, data);
    now = 1_800_000_000;
    const logged: string[] = [];
    const log = {
      info: (_: object, msg: string) => logged.push(msg),
      warn: (_: object, msg: string) => logged.push(msg),
    };
    const scheduler = startRetention(h.deps, 30, log);
    const first = await scheduler.firstPass;
    await scheduler.stop();
    expect(first?.notifications).toBe(3);
    expect(logged).toEqual(["retention pruned old rows"]);
    expect(await recount(u.id)).toEqual([]);
    expect((await get("/api/v1/me/notifications/unread-count", u.key)).json.count).toBe(0);
  });
});
