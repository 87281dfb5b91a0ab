import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { type Harness, isEnvelope, startHarness } from "./support/harness.js";

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

describe.each(BACKENDS)("feed API on %s", (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend);
  });
  afterAll(() => h.close());

  const list = (key: string, query = "") => h.request("GET", `/api/v1/me/notifications${query}`, { key });
  const count = async (key: string) =>
    (await h.request("GET", "/api/v1/me/notifications/unread-count", { key })).json;

  it("lists newest first with the seed page's shapes, renderings and totals", async () => {
    const u = await h.userWithKey();
    await h.pay(
      u.id,
      `a-${u.id}`,
      { amount_cents: 5000, balance_cents: 5480, receipt: "ch_3PYj-mock-49" },
      {
        occurred_at: "2026-05-20T05:08:00Z",
      },
    );
    await h.pay(
      u.id,
      `b-${u.id}`,
      { amount_cents: 2500, balance_cents: 3140 },
      { occurred_at: "2026-05-22T08:08:00Z" },
    );
    const r = await list(u.key, "?unread=true&page=1&page_size=10");
    expect(r.status).toBe(200);
    expect(Object.keys(r.json)).toEqual(["items", "total", "page", "page_size"]);
    expect(r.json).toMatchObject({ total: 2, page: 1, page_size: 10 });
    const [a, b] = r.json.items;
    expect(Object.keys(a)).toEqual(["id", "type", "title", "body", "link", "read_at", "created_at"]);
    expect(a).toMatchObject({
      type: "system.payment.received",
      title: "Payment received · $25.00",
      body: "Your top-up has cleared. Available balance is now $31.40.",
      link: "/billing",
      read_at: null,
      created_at: "2026-05-22T08:08:00Z",
    });
    expect(b).toMatchObject({
      title: "Payment received · $50.00",
      body: "Stripe receipt #ch_3PYj-mock-49. Your balance is now $54.80.",
      created_at: "2026-05-20T05:08:00Z",
    });
    expect(b.id).toBeLessThan(a.id);
  });

  it("orders by created_at then id, both descending, for back-dated events", async () => {
    const u = await h.userWithKey();
    const at = "2026-01-01T00:00:00Z";
    for (const id of ["x1", "x2", "x3"]) await h.pay(u.id, `${id}-${u.id}`, undefined, { occurred_at: at });
    await h.pay(u.id, `old-${u.id}`, undefined, { occurred_at: "2025-01-01T00:00:00Z" });
    const items = (await list(u.key)).json.items as { id: number; created_at: string }[];
    expect(items.map((i) => i.created_at)).toEqual([at, at, at, "2025-01-01T00:00:00Z"]);
    expect(items[0]!.id).toBeGreaterThan(items[1]!.id);
    expect(items[1]!.id).toBeGreaterThan(items[2]!.id);
  });

  it("pages, clamps page_size to 200, and reports the true total past the end", async () => {
    const u = await h.userWithKey();
    for (let i = 0; i < 5; i++) await h.pay(u.id, `p${i}-${u.id}`);
    const p2 = await list(u.key, "?page=2&page_size=2");
    expect(p2.json).toMatchObject({ total: 5, page: 2, page_size: 2 });
    expect(p2.json.items).toHaveLength(2);
    const all = (await list(u.key)).json.items.map((i: { id: number }) => i.id);
    expect(p2.json.items.map((i: { id: number }) => i.id)).toEqual(all.slice(2, 4));
    expect((await list(u.key, "?page=99&page_size=2")).json).toEqual({
      items: [],
      total: 5,
      page: 99,
      page_size: 2,
    });
    expect((await list(u.key, "?page_size=500")).json.page_size).toBe(200);
    expect((await list(u.key, `?page_size=${2 ** 31 - 1}`)).json.page_size).toBe(200);
    expect((await list(u.key, `?page=${2 ** 31 - 1}`)).json).toMatchObject({ items: [], total: 5 });
  });

  it("filters by read state and type, with totals from the counters", async () => {
    const u = await h.userWithKey();
    await h.pay(u.id, `f1-${u.id}`);
    await h.pay(u.id, `f2-${u.id}`);
    await h.lowBalance(u.id, `low-${u.id}`, { balance_cents: -300, threshold_cents: 100000 });
    const first = (await list(u.key, "?type=system.payment.received")).json.items[0];
    await h.request("POST", `/api/v1/me/notifications/${first.id}/mark-read`, { key: u.key });

    const low = (await list(u.key, "?type=system.balance.notify.dispatched")).json;
    expect(low.total).toBe(1);
    expect(low.items[0]).toMatchObject({
      title: "Low balance · -$3.00",
      body: "Your balance of -$3.00 is below your alert threshold of $1,000.00.",
      link: "/billing",
    });
    expect((await list(u.key)).json.total).toBe(3);
    expect((await list(u.key, "?unread=true")).json.total).toBe(2);
    expect((await list(u.key, "?unread=1")).json.total).toBe(2);
    expect((await list(u.key, "?read=true")).json.total).toBe(1);
    expect(
      (await list(u.key, "?read=true")).json.items.every((i: { read_at: string }) => ISO.test(i.read_at)),
    ).toBe(true);
    expect((await list(u.key, "?read=false&unread=false")).json.total).toBe(3);
    expect((await list(u.key, "?read=0&unread=true&type=system.payment.received")).json.total).toBe(1);
    expect((await list(u.key, "?read=true&type=system.balance.notify.dispatched")).json).toMatchObject({
      items: [],
      total: 0,
    });
    expect(await count(u.key)).toEqual({ count: 2 });
  });

  it("treats empty parameters as absent and ignores unknown ones", async () => {
    const u = await h.userWithKey();
    await h.pay(u.id, `e-${u.id}`);
    const r = await list(u.key, "?unread=&read=&type=&page=&page_size=&whatever=1");
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ total: 1, page: 1, page_size: 50 });
  });

  it.each([
    ["?read=true&unread=true", "read and unread cannot both be true"],
    ["?unread=yes", "unread"],
    ["?read=TRUE", "read"],
    ["?type=nope", "type"],
    ["?type=admin.user.update", "type"],
    ["?page=0", "page"],
    ["?page=-1", "page"],
    ["?page=1.5", "page"],
    ["?page=abc", "page"],
    [`?page=${2 ** 31}`, "page"],
    ["?page_size=0", "page_size"],
    ["?page_size=1e2", "page_size"],
    ["?page=1&page=2", "page"],
    ["?type=system.payment.received&type=system.payment.received", "type"],
    ["?unread=true&unread=true", "unread"],
  ])("rejects %s with a 400 that names the problem", async (query, words) => {
    const u = await h.userWithKey();
    const r = await list(u.key, query);
    expect(isEnvelope(r, 400, "invalid_request_error")).toBe(true);
    expect(r.json.error.message).toContain(words);
  });

  it("marks one read idempotently and never reveals another user's row", async () => {
    const u = await h.userWithKey();
    const other = await h.userWithKey();
    await h.pay(u.id, `m-${u.id}`);
    const { id } = (await list(u.key)).json.items[0];
    const first = await h.request("POST", `/api/v1/me/notifications/${id}/mark-read`, { key: u.key });
    expect(first.status).toBe(200);
    expect(Object.keys(first.json)).toEqual(["id", "type", "read_at"]);
    expect(first.json).toMatchObject({ id, type: "system.payment.received" });
    expect(first.json.read_at).toMatch(ISO);
    const again = await h.request("POST", `/api/v1/me/notifications/${id}/mark-read`, { key: u.key });
    expect(again.json).toEqual(first.json);
    expect(await count(u.key)).toEqual({ count: 0 });

    const theirs = await h.request("POST", `/api/v1/me/notifications/${id}/mark-read`, { key: other.key });
    const missing = await h.request("POST", "/api/v1/me/notifications/999999999/mark-read", {
      key: other.key,
    });
    expect(isEnvelope(theirs, 404, "not_found_error")).toBe(true);
    expect(theirs.json).toEqual(missing.json);
    for (const bad of ["0", "-1", "abc", "1.5", "1e3", "99999999999999999999", "%20"]) {
      const r = await h.request("POST", `/api/v1/me/notifications/${bad}/mark-read`, { key: u.key });
      expect(isEnvelope(r, 404, "not_found_error"), bad).toBe(true);
    }
  });

  it("marks all read, reporting the rows flipped, then 0", async () => {
    const u = await h.userWithKey();
    for (let i = 0; i < 3; i++) await h.pay(u.id, `all${i}-${u.id}`);
    const { id } = (await list(u.key)).json.items[0];
    await h.request("POST", `/api/v1/me/notifications/${id}/mark-read`, { key: u.key });
    const r = await h.request("POST", "/api/v1/me/notifications/mark-all-read", { key: u.key });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ marked_read: 2 });
    expect((await h.request("POST", "/api/v1/me/notifications/mark-all-read", { key: u.key })).json).toEqual({
      marked_read: 0,
    });
    expect(await count(u.key)).toEqual({ count: 0 });
    expect((await list(u.key, "?read=true")).json.total).toBe(3);
    expect((await list(u.key, "?unread=true")).json.total).toBe(0);
    await h.pay(u.id, `after-${u.id}`);
    expect(await count(u.key)).toEqual({ count: 1 });
  });

  it("keeps muted types out of the feed from then on, without back-filling on unmute", async () => {
    const u = await h.userWithKey();
    const settings = (body?: unknown) =>
      h.request(body === undefined ? "GET" : "PUT", "/api/v1/me/notification-settings", { key: u.key, body });
    expect((await settings()).json).toEqual({ muted_types: [] });
    await h.pay(u.id, `before-${u.id}`);
    const put = await settings({
      muted_types: ["system.payment.received", "system.payment.received", "org.api_key.revoke"],
    });
    expect(put.status).toBe(200);
    expect(put.json).toEqual({ muted_types: ["system.payment.received", "org.api_key.revoke"] });
    expect((await settings()).json).toEqual(put.json);

    const muted = await h.pay(u.id, `muted-${u.id}`);
    expect(muted.status).toBe(202);
    expect(muted.json).toEqual({ id: `muted-${u.id}`, duplicate: false, notifications: 0 });
    expect(await count(u.key)).toEqual({ count: 1 });

    await settings({ muted_types: [] });
    expect(await count(u.key)).toEqual({ count: 1 });
    expect((await h.pay(u.id, `unmuted-${u.id}`)).json.notifications).toBe(1);
    expect((await list(u.key)).json.total).toBe(2);

    for (const bad of [
      { muted_types: ["nope"] },
      { muted_types: ["admin.user.update"] },
      { muted_types: "x" },
      {},
      { muted_types: [], x: 1 },
    ]) {
      expect(isEnvelope(await settings(bad), 400, "invalid_request_error"), JSON.stringify(bad)).toBe(true);
    }
  });
});
