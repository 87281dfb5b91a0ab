import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, startHarness } from "./support/harness.js";

const PAYMENT = "system.payment.received";
const data = { amount_cents: 100, balance_cents: 100 };

describe.each(BACKENDS)("batch ingest on %s", (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend, { resolve: async () => [{ address: "93.184.216.34", family: 4 }] });
  });
  afterAll(() => h.close());
  const batch = (events: unknown) =>
    h.request("POST", "/admin/v1/events/batch", { key: ADMIN_TOKEN, body: { events } });
  const count = async (key: string) =>
    (await h.request("GET", "/api/v1/me/notifications/unread-count", { key })).json.count as number;

  it("answers in request order, reporting bad items while the others land", async () => {
    const u = await h.userWithKey();
    await h.pay(u.id, `old-${u.id}`, data);
    const r = await batch([
      { id: `a-${u.id}`, type: PAYMENT, user_id: u.id, data },
      { id: `b-${u.id}`, type: PAYMENT, user_id: u.id, data: { amount_cents: 0, balance_cents: 1 } },
      { id: `c-${u.id}`, type: PAYMENT, user_id: 987654321, data },
      { id: `old-${u.id}`, type: PAYMENT, user_id: u.id, data },
      { id: `old-${u.id}`, type: PAYMENT, user_id: u.id, data: { amount_cents: 5, balance_cents: 5 } },
      { id: `a-${u.id}`, type: PAYMENT, user_id: u.id, data },
      { id: `a-${u.id}`, type: PAYMENT, user_id: u.id, data: { amount_cents: 7, balance_cents: 7 } },
      "not an object",
      { type: PAYMENT, user_id: u.id, data },
      {
        id: `d-${u.id}`,
        type: "system.balance.notify.dispatched",
        user_id: u.id,
        data: { balance_cents: 1, threshold_cents: 5 },
      },
    ]);
    expect(r.status).toBe(202);
    const results = r.json.results;
    expect(results).toHaveLength(10);
    expect(results[0]).toEqual({ id: `a-${u.id}`, duplicate: false, notifications: 1 });
    expect(results[1]).toMatchObject({ id: `b-${u.id}`, error: { type: "invalid_request_error" } });
    expect(results[1].error.message).toMatch(/^events\[1\]: data\.amount_cents/);
    expect(results[2]).toMatchObject({ id: `c-${u.id}`, error: { type: "not_found_error" } });
    expect(results[3]).toEqual({ id: `old-${u.id}`, duplicate: true, notifications: 0 });
    expect(results[4]).toMatchObject({ id: `old-${u.id}`, error: { type: "conflict_error" } });
    expect(results[5]).toEqual({ id: `a-${u.id}`, duplicate: true, notifications: 0 });
    expect(results[6]).toMatchObject({ id: `a-${u.id}`, error: { type: "conflict_error" } });
    expect(results[7]).toMatchObject({ id: null, error: { type: "invalid_request_error" } });
    expect(results[8]).toMatchObject({ id: null, error: { type: "invalid_request_error" } });
    expect(results[9]).toEqual({ id: `d-${u.id}`, duplicate: false, notifications: 1 });
    // Every failed item's message names it, whichever check refused it.
    for (const i of [1, 2, 4, 6, 7, 8])
      expect(results[i].error.message).toMatch(new RegExp(`^events\\[${i}\\]: `));
    // Landed and visible to the very next read, counters exact.
    expect(await count(u.key)).toBe(3);
    const list = await h.request("GET", "/api/v1/me/notifications", { key: u.key });
    expect(list.json.total).toBe(3);
  });

  it("takes a thousand events for many users in one request, with mutes and webhooks applied", async () => {
    const users = await Promise.all([0, 1, 2, 3].map(() => h.userWithKey()));
    const [muter, hooked] = users;
    await h.request("PUT", "/api/v1/me/notification-settings", {
      key: muter!.key,
      body: { muted_types: [PAYMENT] },
    });
    const endpoint = await h.request("POST", "/api/v1/me/webhooks", {
      key: hooked!.key,
      body: { url: "https://hooks.example.com/b" },
    });
    const events = Array.from({ length: 1000 }, (_, i) => ({
      id: `bulk-${users[0]!.id}-${i}`,
      type: PAYMENT,
      user_id: users[i % 4]!.id,
      data: { amount_cents: i + 1, balance_cents: i },
      occurred_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    }));
    const r = await batch(events);
    expect(r.status).toBe(202);
    expect(r.json.results.filter((x: { duplicate?: boolean }) => x.duplicate === false)).toHaveLength(1000);
    expect(r.json.results.filter((x: { notifications?: number }) => x.notifications === 0)).toHaveLength(250);
    expect(await count(muter!.key)).toBe(0);
    for (const u of users.slice(1)) expect(await count(u.key)).toBe(250);
    const page = await h.request("GET", "/api/v1/me/notifications?page_size=2", { key: users[1]!.key });
    expect(page.json.items[0].title).toBe(`Payment received · $9.98`);
    const deliveries = await h.request(
      "GET",
      `/api/v1/me/webhooks/${endpoint.json.id}/deliveries?page_size=1`,
      {
        key: hooked!.key,
      },
    );
    expect(deliveries.json.total).toBe(250);
    // Ids of one user's rows grow in insertion order.
    const ids = (
      await h.request("GET", "/api/v1/me/notifications?page_size=200", { key: users[2]!.key })
    ).json.items.map((n: { id: number }) => n.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => b - a));
  });

  it("refuses an empty, oversized or malformed batch as a whole", async () => {
    const u = await h.userWithKey();
    const one = { id: `x-${u.id}`, type: PAYMENT, user_id: u.id, data };
    for (const body of [
      { events: [] },
      { events: Array(1001).fill(one) },
      { events: one },
      {},
      { events: [one], x: 1 },
    ]) {
      const r = await h.request("POST", "/admin/v1/events/batch", { key: ADMIN_TOKEN, body });
      expect(isEnvelope(r, 400, "invalid_request_error"), JSON.stringify(body).slice(0, 80)).toBe(true);
    }
    expect(await count(u.key)).toBe(0);
    const anonymous = await h.request("POST", "/admin/v1/events/batch", { body: { events: [one] } });
    expect(isEnvelope(anonymous, 401, "authentication_error")).toBe(true);
  });

  it("accepts bodies up to 8 MiB on this route only", async () => {
    const u = await h.userWithKey();
    const pad = "p".repeat(3000);
    const events = Array.from({ length: 1000 }, (_, i) => ({
      id: `big-${u.id}-${i}`,
      type: PAYMENT,
      user_id: u.id,
      data: { ...data, pad },
    }));
    const r = await batch(events);
    expect(JSON.stringify({ events }).length).toBeGreaterThan(2 * 1024 * 1024);
    expect(r.status).toBe(202);
    const tooBig = await h.request("POST", "/admin/v1/events/batch", {
      key: ADMIN_TOKEN,
      raw: JSON.stringify({ events, more: "m".repeat(6 * 1024 * 1024) }),
      headers: { "content-type": "application/json" },
    });
    expect(isEnvelope(tooBig, 413, "invalid_request_error")).toBe(true);
    expect(tooBig.json.error.message).toContain("8 MiB");
    const single = await h.request("POST", "/admin/v1/events", {
      key: ADMIN_TOKEN,
      raw: JSON.stringify({ ...events[0], data: { ...data, pad: "p".repeat(1024 * 1024) } }),
      headers: { "content-type": "application/json" },
    });
    expect(isEnvelope(single, 413, "invalid_request_error")).toBe(true);
  });
});
