import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, type Response, startHarness } from "./support/harness.js";
import { iso } from "./support/iso.js";

const PAYMENT = "system.payment.received";
const LOW = "system.balance.notify.dispatched";
const HOUR = 60 * 60;
/** The suite's clock: 2026-05-22T12:00:00Z unless a test moves it. */
const NOW = Date.UTC(2026, 4, 22, 12, 0, 0) / 1000;
const MISSING_USER = 987_654_321;

/** True when `message` names `field` as a whole word ("id" is not named by "user_id"). */
const names = (message: string, field: string) =>
  new RegExp(`(^|[^\\w.])${field.replace(/\./g, "\\.")}(?![\\w.])`).test(message);

interface Row {
  id: number;
  type: string;
  title: string;
  body: string;
  link: string | null;
  read_at: string | null;
  created_at: string;
}

describe.each(BACKENDS)("event ingest on %s", (backend) => {
  let h: Harness;
  let now = NOW;
  beforeAll(async () => {
    h = await startHarness(backend, { clock: () => now });
  });
  afterAll(() => h.close());
  beforeEach(() => {
    now = NOW;
  });

  let seq = 0;
  const eventId = (tag = "ev") => `${tag}-${++seq}`;
  const ingest = (body: unknown) => h.request("POST", "/admin/v1/events", { key: ADMIN_TOKEN, body });
  /** A valid payment event for `userId`, with `extra` merged over it (undefined removes a field). */
  const payment = (userId: number, extra: Record<string, unknown> = {}) => ({
    id: eventId(),
    type: PAYMENT,
    user_id: userId,
    data: { amount_cents: 2500, balance_cents: 3140 },
    ...extra,
  });
  const count = async (key: string) =>
    (await h.request("GET", "/api/v1/me/notifications/unread-count", { key })).json.count as number;
  const newest = async (key: string): Promise<Row> =>
    (await h.request("GET", "/api/v1/me/notifications", { key })).json.items[0];

  /** Every row of a filtered list, paged 200 at a time; `total` must agree on every page. */
  const everyRow = async (key: string, query = "") => {
    const items: Row[] = [];
    let total: number | undefined;
    for (let page = 1; ; page++) {
      const r = await h.request("GET", `/api/v1/me/notifications?page_size=200&page=${page}${query}`, {
        key,
      });
      expect(r.status).toBe(200);
      total ??= r.json.total as number;
      expect(r.json.total).toBe(total);
      items.push(...r.json.items);
      if (r.json.items.length < 200) return { items, total };
    }
  };

  const expect400 = (r: Response, field: string) => {
    expect(isEnvelope(r, 400, "invalid_request_error"), r.text).toBe(true);
    expect(names(r.json.error.message, field), r.json.error.message).toBe(true);
  };

  it("answers 202 with exactly {id, duplicate, notifications} and adds the row", async () => {
    const u = await h.userWithKey();
    const body = payment(u.id);
    const r = await ingest(body);
    expect(r.status).toBe(202);
    expect(Object.keys(r.json)).toEqual(["id", "duplicate", "notifications"]);
    expect(r.json).toEqual({ id: body.id, duplicate: false, notifications: 1 });
    expect(await count(u.key)).toBe(1);
    expect(await newest(u.key)).toMatchObject({
      type: PAYMENT,
      title: "Payment received · $25.00",
      body: "Your top-up has cleared. Available balance is now $31.40.",
      link: "/billing",
      read_at: null,
      created_at: iso(NOW),
    });
  });

  const dataCase = (data: object, field: string, type = PAYMENT) => [{ type, data }, field] as const;
  it.each([
    ["an empty id", { id: "" }, "id"],
    ["a 129-character id", { id: "a".repeat(129) }, "id"],
    ["an id with a space", { id: "pay 1" }, "id"],
    ["an id with a slash", { id: "pay/1" }, "id"],
    ["a unicode id", { id: "päy-1" }, "id"],
    ["a numeric id", { id: 12 }, "id"],
    ["no id", { id: undefined }, "id"],
    ["type admin.org.member.add", { type: "admin.org.member.add" }, "type"],
    ["type admin.api_key.revoke", { type: "admin.api_key.revoke" }, "type"],
    ["type org.api_key.revoke", { type: "org.api_key.revoke" }, "type"],
    ["type admin.user.update", { type: "admin.user.update" }, "type"],
    ["type org.api_key.create", { type: "org.api_key.create" }, "type"],
    ["type webhook.test", { type: "webhook.test" }, "type"],
    ["an unknown type", { type: "system.payment.refunded" }, "type"],
    ["no type", { type: undefined }, "type"],
    ["user_id 1.5", { user_id: 1.5 }, "user_id"],
    ["user_id 0", { user_id: 0 }, "user_id"],
    ["user_id -1", { user_id: -1 }, "user_id"],
    ["user_id as a string", { user_id: "7" }, "user_id"],
    ["user_id null", { user_id: null }, "user_id"],
    ["no user_id", { user_id: undefined }, "user_id"],
    ["no data", { data: undefined }, "data"],
    ["data null", { data: null }, "data"],
    ["data an array", { data: [] }, "data"],
    ["data a string", { data: "x" }, "data"],
    ["amount_cents 0", ...dataCase({ amount_cents: 0, balance_cents: 1 }, "data.amount_cents")],
    ["amount_cents -5", ...dataCase({ amount_cents: -5, balance_cents: 1 }, "data.amount_cents")],
    ["amount_cents 1.5", ...dataCase({ amount_cents: 1.5, balance_cents: 1 }, "data.amount_cents")],
    ["amount_cents a string", ...dataCase({ amount_cents: "100", balance_cents: 1 }, "data.amount_cents")],
    ["amount_cents 2^53", ...dataCase({ amount_cents: 2 ** 53, balance_cents: 1 }, "data.amount_cents")],
    ["no amount_cents", ...dataCase({ balance_cents: 1 }, "data.amount_cents")],
    ["balance_cents 0.5", ...dataCase({ amount_cents: 1, balance_cents: 0.5 }, "data.balance_cents")],
    ["balance_cents a string", ...dataCase({ amount_cents: 1, balance_cents: "1" }, "data.balance_cents")],
    ["balance_cents null", ...dataCase({ amount_cents: 1, balance_cents: null }, "data.balance_cents")],
    ["no balance_cents", ...dataCase({ amount_cents: 1 }, "data.balance_cents")],
    ["an empty receipt", ...dataCase({ amount_cents: 1, balance_cents: 1, receipt: "" }, "data.receipt")],
    [
      "a 129-character receipt",
      ...dataCase({ amount_cents: 1, balance_cents: 1, receipt: "r".repeat(129) }, "data.receipt"),
    ],
    ["a numeric receipt", ...dataCase({ amount_cents: 1, balance_cents: 1, receipt: 7 }, "data.receipt")],
    [
      "threshold_cents -1",
      ...dataCase({ balance_cents: 1, threshold_cents: -1 }, "data.threshold_cents", LOW),
    ],
    [
      "threshold_cents 1.5",
      ...dataCase({ balance_cents: 1, threshold_cents: 1.5 }, "data.threshold_cents", LOW),
    ],
    ["no threshold_cents", ...dataCase({ amount_cents: 1, balance_cents: 1 }, "data.threshold_cents", LOW)],
    [
      "a low-balance string",
      ...dataCase({ balance_cents: "-3", threshold_cents: 1 }, "data.balance_cents", LOW),
    ],
    ["an unknown top-level field", { priority: "high" }, "priority"],
    ["a camelCase user id", { userId: 1 }, "userId"],
    ["an empty title", { title: "" }, "title"],
    ["a 201-character title", { title: "t".repeat(201) }, "title"],
    ["a null title", { title: null }, "title"],
    ["an empty body", { body: "" }, "body"],
    ["a 2001-character body", { body: "b".repeat(2001) }, "body"],
    ["link //evil.com", { link: "//evil.com" }, "link"],
    ["link /\\evil", { link: "/\\evil" }, "link"],
    ["link https://x", { link: "https://x" }, "link"],
    ["link javascript:alert(1)", { link: "javascript:alert(1)" }, "link"],
    ["a link with a space", { link: "/billing page" }, "link"],
    ["a link with a newline", { link: "/billing\nx" }, "link"],
    ["a relative link", { link: "billing" }, "link"],
    ["an empty link", { link: "" }, "link"],
    ["a 2049-character link", { link: `/${"a".repeat(2048)}` }, "link"],
    ["a numeric link", { link: 5 }, "link"],
    [
      "bad data with overrides",
      { title: "Hi", data: { amount_cents: 0, balance_cents: 1 } },
      "data.amount_cents",
    ],
  ] as [string, Record<string, unknown>, string][])(
    "rejects %s with a 400 naming the field",
    async (_, extra, field) => {
      const u = await h.userWithKey();
      expect400(await ingest(payment(u.id, extra)), field);
      expect(await count(u.key)).toBe(0);
    },
  );

  it.each([
    ["a 128-character id of every allowed kind", { id: `Az09._:-${"x".repeat(120)}` }],
    ["a one-character id", { id: "Q" }],
    [
      "extra fields inside data",
      { data: { amount_cents: 1, balance_cents: -1, note: "hi", nested: { a: [1] } } },
    ],
    ["a 1-character receipt", { data: { amount_cents: 1, balance_cents: 1, receipt: "r" } }],
    ["a 128-character receipt", { data: { amount_cents: 1, balance_cents: 1, receipt: "r".repeat(128) } }],
    ["a zero threshold", { type: LOW, data: { balance_cents: 0, threshold_cents: 0 } }],
    ["a 200-character title", { title: "t".repeat(200) }],
    ["a 2000-character body", { body: "b".repeat(2000) }],
    ["a 2048-character link", { link: `/${"a".repeat(2047)}` }],
    ["the link /", { link: "/" }],
    ["a link with a query and fragment", { link: "/billing?tab=invoices#latest" }],
    ["a null link", { link: null }],
  ] as [string, Record<string, unknown>][])("accepts %s", async (_, extra) => {
    const u = await h.userWithKey();
    const body = payment(u.id, extra);
    expect((await ingest(body)).json).toEqual({ id: body.id, duplicate: false, notifications: 1 });
    expect(await count(u.key)).toBe(1);
  });

  it("puts overrides in the feed row and renders what is not overridden", async () => {
    const u = await h.userWithKey();
    await ingest(payment(u.id, { title: "Top-up done", body: "Thanks!", link: "/billing/receipts/7" }));
    expect(await newest(u.key)).toMatchObject({
      title: "Top-up done",
      body: "Thanks!",
      link: "/billing/receipts/7",
    });
    await ingest(
      payment(u.id, { type: LOW, data: { balance_cents: -300, threshold_cents: 500 }, link: null }),
    );
    expect(await newest(u.key)).toMatchObject({
      type: LOW,
      title: "Low balance · -$3.00",
      body: "Your balance of -$3.00 is below your alert threshold of $5.00.",
      link: null,
    });
    await ingest(payment(u.id, { body: "Only the body changes." }));
    expect(await newest(u.key)).toMatchObject({
      title: "Payment received · $25.00",
      body: "Only the body changes.",
      link: "/billing",
    });
  });

  it.each([
    [{ amount_cents: 123450, balance_cents: -300 }, "Payment received · $1,234.50", "-$3.00"],
    [{ amount_cents: 5, balance_cents: 100000000 }, "Payment received · $0.05", "$1,000,000.00"],
    [{ amount_cents: 100, balance_cents: 0 }, "Payment received · $1.00", "$0.00"],
    [{ amount_cents: 99, balance_cents: -5 }, "Payment received · $0.99", "-$0.05"],
    [
      { amount_cents: Number.MAX_SAFE_INTEGER, balance_cents: -Number.MAX_SAFE_INTEGER },
      "Payment received · $90,071,992,547,409.91",
      "-$90,071,992,547,409.91",
    ],
  ])("renders money %j", async (data, title, balance) => {
    const u = await h.userWithKey();
    await ingest(payment(u.id, { data }));
    expect(await newest(u.key)).toMatchObject({
      title,
      body: `Your top-up has cleared. Available balance is now ${balance}.`,
    });
    await ingest(
      payment(u.id, { type: LOW, data: { balance_cents: data.balance_cents, threshold_cents: 123450 } }),
    );
    expect(await newest(u.key)).toMatchObject({
      title: `Low balance · ${balance}`,
      body: `Your balance of ${balance} is below your alert threshold of $1,234.50.`,
    });
  });

  it.each([
    ["2026-05-22T10:08:00+02:00", "2026-05-22T08:08:00Z"],
    ["2026-05-22T03:08:00-05:00", "2026-05-22T08:08:00Z"],
    ["2026-05-21T23:30:00-09:30", "2026-05-22T09:00:00Z"],
    ["2026-05-22T08:08:00+00:00", "2026-05-22T08:08:00Z"],
    ["2026-05-22T08:08:00-00:00", "2026-05-22T08:08:00Z"],
    ["2026-05-22t08:08:00z", "2026-05-22T08:08:00Z"],
    ["2026-05-22T08:08:00.999Z", "2026-05-22T08:08:00Z"],
    ["2026-05-22T10:08:59.999999+02:00", "2026-05-22T08:08:59Z"],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"],
    ["1999-12-31T23:59:59Z", "1999-12-31T23:59:59Z"],
    [iso(NOW + 23 * HOUR), iso(NOW + 23 * HOUR)],
    [iso(NOW + 24 * HOUR), iso(NOW + 24 * HOUR)],
  ])("takes occurred_at %s as created_at %s", async (occurredAt, createdAt) => {
    const u = await h.userWithKey();
    expect((await ingest(payment(u.id, { occurred_at: occurredAt }))).status).toBe(202);
    expect((await newest(u.key)).created_at).toBe(createdAt);
  });

  it.each([
    "2026-02-30T00:00:00Z",
    "2025-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-00-10T00:00:00Z",
    "2026-05-22T25:00:00Z",
    "2026-05-22T08:60:00Z",
    "2026-05-22T08:08:61Z",
    "2026-05-22T08:08:00+24:00",
    "2026-05-22T08:08:00+02:60",
    "2026-05-22",
    "2026-05-22T08:08:00",
    "2026-05-22T08:08Z",
    "2026-05-22T08:08:00+0200",
    "2026-05-22T08:08:00.Z",
    " 2026-05-22T08:08:00Z",
    "2026-5-22T08:08:00Z",
    "22/05/2026 08:08",
    "1779437280",
    "",
    1779437280,
    iso(NOW + 24 * HOUR + 1),
    iso(NOW + 25 * HOUR),
  ])("rejects occurred_at %j with a 400", async (occurredAt) => {
    const u = await h.userWithKey();
    expect400(await ingest(payment(u.id, { occurred_at: occurredAt })), "occurred_at");
    expect(await count(u.key)).toBe(0);
  });

  it("defaults occurred_at to now", async () => {
    const u = await h.userWithKey();
    now = NOW + 42;
    await ingest(payment(u.id));
    expect((await newest(u.key)).created_at).toBe(iso(NOW + 42));
  });

  it("validates before looking up the user, and looks up the user before the id", async () => {
    const u = await h.userWithKey();
    const invalid = await ingest(payment(MISSING_USER, { data: { amount_cents: 0, balance_cents: 1 } }));
    expect400(invalid, "data.amount_cents");
    expect400(await ingest(payment(MISSING_USER, { type: "admin.user.update" })), "type");

    const first = payment(u.id);
    expect((await ingest(first)).status).toBe(202);
    const unknown = await ingest({ ...first, user_id: MISSING_USER });
    expect(isEnvelope(unknown, 404, "not_found_error")).toBe(true);
    expect(isEnvelope(await ingest(payment(MISSING_USER)), 404, "not_found_error")).toBe(true);
    expect400(await ingest({ ...first, data: { amount_cents: 0, balance_cents: 1 } }), "data.amount_cents");
    expect((await ingest(first)).json).toEqual({ id: first.id, duplicate: true, notifications: 0 });
  });

  it("treats the same id with the same content as a duplicate", async () => {
    const u = await h.userWithKey();
    const id = eventId("same");
    const data = { amount_cents: 2500, balance_cents: 3140, receipt: "r-1", extra: { a: 1, b: [1, 2] } };
    const first = { id, type: PAYMENT, user_id: u.id, data, occurred_at: "2026-05-22T08:08:00Z", link: null };
    expect((await ingest(first)).json).toEqual({ id, duplicate: false, notifications: 1 });
    expect((await ingest(first)).json).toEqual({ id, duplicate: true, notifications: 0 });
    const reordered = `{ "link": null, "occurred_at": "2026-05-22T10:08:00+02:00", "data": {
      "extra": {"b": [1, 2], "a": 1}, "receipt": "r-1", "balance_cents": 3140, "amount_cents": 2500 },
      "user_id": ${u.id}, "type": "${PAYMENT}", "id": "${id}" }`;
    const again = await h.request("POST", "/admin/v1/events", {
      key: ADMIN_TOKEN,
      raw: reordered,
      headers: { "content-type": "application/json" },
    });
    expect(again.status).toBe(202);
    expect(again.json).toEqual({ id, duplicate: true, notifications: 0 });
    expect(await count(u.key)).toBe(1);
    expect((await everyRow(u.key)).total).toBe(1);
  });

  it("does not count the default occurred_at as content", async () => {
    const u = await h.userWithKey();
    const body = payment(u.id);
    await ingest(body);
    now = NOW + 600;
    expect((await ingest(body)).json).toEqual({ id: body.id, duplicate: true, notifications: 0 });
    expect((await newest(u.key)).created_at).toBe(iso(NOW));
  });

  // Valid data for both ingestible types, so `type` alone can differ.
  const BASE = { amount_cents: 100, balance_cents: 5, threshold_cents: 10 };
  const OTHER_USER = "<another user>";
  it.each([
    ["data", {}, { data: { ...BASE, amount_cents: 101 } }],
    ["an extra data field", {}, { data: { ...BASE, note: "x" } }],
    ["an extra data field's value", { data: { ...BASE, note: "x" } }, { data: { ...BASE, note: "y" } }],
    ["type", {}, { type: LOW }],
    ["user_id", {}, { user_id: OTHER_USER }],
    ["a title override added", {}, { title: "New title" }],
    ["a title override changed", { title: "A" }, { title: "B" }],
    ["a body override added", {}, { body: "New body" }],
    ["a null link added", {}, { link: null }],
    ["a link changed", { link: "/a" }, { link: "/b" }],
    ["occurred_at", { occurred_at: "2026-05-22T08:08:00Z" }, { occurred_at: "2026-05-22T08:08:01Z" }],
  ] as [string, Record<string, unknown>, Record<string, unknown>][])(
    "answers 409 for the same id with different %s",
    async (_, firstExtra, secondExtra) => {
      const u = await h.userWithKey();
      const other = await h.userWithKey();
      const first = { ...payment(u.id, { data: BASE }), ...firstExtra };
      const second: Record<string, unknown> = { ...first, ...secondExtra };
      if (second.user_id === OTHER_USER) second.user_id = other.id;
      expect((await ingest(first)).status).toBe(202);
      const before = await newest(u.key);
      const r = await ingest(second);
      expect(isEnvelope(r, 409, "conflict_error"), r.text).toBe(true);
      expect(await count(u.key)).toBe(1);
      expect(await count(other.key)).toBe(0);
      expect(await newest(u.key)).toEqual(before);
      expect((await ingest(first)).json).toEqual({ id: first.id, duplicate: true, notifications: 0 });
    },
  );

  it("ingests one id 50 times at once as one row", async () => {
    const u = await h.userWithKey();
    const body = payment(u.id);
    const results = await Promise.all(Array.from({ length: 50 }, () => ingest(body)));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(202));
    const fresh = results.filter((r) => r.json.duplicate === false);
    expect(fresh.map((r) => r.json)).toEqual([{ id: body.id, duplicate: false, notifications: 1 }]);
    for (const r of results.filter((x) => x.json.duplicate))
      expect(r.json).toEqual({ id: body.id, duplicate: true, notifications: 0 });
    expect((await everyRow(u.key)).items).toHaveLength(1);
    expect(await count(u.key)).toBe(1);
  });

  it("ingests 50 different ids at once for one user as 50 rows", async () => {
    const u = await h.userWithKey();
    const results = await Promise.all(Array.from({ length: 50 }, () => ingest(payment(u.id))));
    expect(results.every((r) => r.status === 202 && r.json.notifications === 1)).toBe(true);
    const all = await everyRow(u.key);
    expect(all.items).toHaveLength(50);
    expect(all.total).toBe(50);
    expect(new Set(all.items.map((i) => i.id)).size).toBe(50);
    expect(await count(u.key)).toBe(50);
  });

  it("keeps counts and totals exact under concurrent ingest, mark-read and mark-all-read", async () => {
    const u = await h.userWithKey();
    for (let i = 0; i < 20; i++) await ingest(payment(u.id));
    const seeded = (await everyRow(u.key)).items.map((i) => i.id);
    const markOne = (id: number) =>
      h.request("POST", `/api/v1/me/notifications/${id}/mark-read`, { key: u.key });
    const markAll = () => h.request("POST", "/api/v1/me/notifications/mark-all-read", { key: u.key });
    const work: Promise<Response>[] = [];
    for (let i = 0; i < 100; i++) {
      work.push(ingest(payment(u.id)));
      if (i % 10 === 5) work.push(markAll());
      if (i < seeded.length) work.push(markOne(seeded[i]!));
    }
    const results = await Promise.all(work);
    expect(results.filter((r) => r.status >= 300).map((r) => r.text)).toEqual([]);

    const all = await everyRow(u.key);
    const unread = await everyRow(u.key, "&unread=true");
    const read = await everyRow(u.key, "&read=true");
    expect(all.items).toHaveLength(120);
    expect(all.total).toBe(120);
    expect(new Set(all.items.map((i) => i.id)).size).toBe(120);
    expect(unread.items.every((i) => i.read_at === null)).toBe(true);
    expect(read.items.every((i) => i.read_at !== null)).toBe(true);
    expect(unread.total).toBe(unread.items.length);
    expect(read.total).toBe(read.items.length);
    expect(unread.items.length + read.items.length).toBe(120);
    expect(all.items.filter((i) => i.read_at === null)).toHaveLength(unread.items.length);
    expect(await count(u.key)).toBe(unread.items.length);
    expect((await markAll()).json).toEqual({ marked_read: unread.items.length });
    expect(await count(u.key)).toBe(0);
  });
});
