import { setImmediate } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeps } from "../src/deps.js";
import { buildApp } from "../src/http/app.js";
import { BACKENDS, openTestStore } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, type Response, startHarness } from "./support/harness.js";
import { iso } from "./support/iso.js";

const FEED = "/api/v1/me/notifications";
const PAYMENT = "system.payment.received";
const T0 = 1_780_000_000;
const version = (r: Response) => Number(r.headers["x-feed-version"]);
const etag = (r: Response) => r.headers.etag as string;

/** The two polled answers: the unread count and a list page. */
const POLLED = ["/unread-count", "?unread=true&page_size=5"];

describe.each(BACKENDS)("cheap polling on %s", (backend) => {
  let h: Harness;
  let now = T0;
  const at = (t: number) => {
    now = t;
    return t;
  };
  beforeAll(async () => {
    h = await startHarness(backend, { clock: () => now });
  });
  afterAll(() => h.close());

  const get = (key: string, path: string, ifNoneMatch?: string) =>
    h.request("GET", `${FEED}${path}`, { key, headers: ifNoneMatch ? { "if-none-match": ifNoneMatch } : {} });
  const post = (key: string, path: string) => h.request("POST", `${FEED}${path}`, { key });
  const balanceLow = (userId: number, id: string) =>
    h.lowBalance(userId, id, { balance_cents: 1, threshold_cents: 500 });
  /** Every row of the user's feed, by id. */
  const rows = async (key: string) =>
    new Map<number, { read_at: string | null }>(
      (await get(key, "?page_size=200")).json.items.map((i: { id: number }) => [i.id, i]),
    );
  const total = async (key: string, query: string) => (await get(key, `?${query}`)).json.total as number;

  function expectPollHeaders(r: Response, interval = "60") {
    expect(r.headers.etag).toMatch(/^W\/".+"$/);
    expect(r.headers["x-feed-version"]).toMatch(/^\d+$/);
    expect(r.headers["x-poll-interval"]).toBe(interval);
    expect(r.headers["cache-control"]).toBe("private, no-cache");
  }

  it.each(POLLED)(
    "%s carries the polling headers and answers a matching ETag with a bare 304",
    async (path) => {
      const u = await h.userWithKey();
      await h.pay(u.id, `a-${u.id}`);
      const r = await get(u.key, path);
      expect(r.status).toBe(200);
      expectPollHeaders(r);
      const again = await get(u.key, path, etag(r));
      expect(again.status).toBe(304);
      expect(again.text).toBe("");
      expectPollHeaders(again);
      expect(etag(again)).toBe(etag(r));
      expect(version(again)).toBe(version(r));
    },
  );

  it("keeps the unread-count body exactly {count}", async () => {
    const u = await h.userWithKey();
    for (const n of [1, 2]) await h.pay(u.id, `b${n}-${u.id}`);
    expect((await get(u.key, "/unread-count")).text).toBe('{"count":2}');
  });

  it("answers 200 with a newer ETag after every change, and 304 after no-ops", async () => {
    const u = await h.userWithKey();
    await h.pay(u.id, `c1-${u.id}`);
    let tags = await Promise.all(POLLED.map((p) => get(u.key, p)));
    const id = (await get(u.key, "")).json.items[0].id;
    const changes = [
      () => h.pay(u.id, `c2-${u.id}`),
      () => post(u.key, `/${id}/mark-read`),
      () => post(u.key, "/mark-all-read"),
    ];
    for (const change of changes) {
      await change();
      const next = await Promise.all(POLLED.map((p, i) => get(u.key, p, etag(tags[i]!))));
      for (const [i, r] of next.entries()) {
        expect(r.status).toBe(200);
        expect(etag(r)).not.toBe(etag(tags[i]!));
        expect(version(r)).toBeGreaterThan(version(tags[i]!));
      }
      tags = next;
    }
    const noOps = [
      () => post(u.key, `/${id}/mark-read`),
      () => post(u.key, "/mark-all-read"),
      () => h.pay(u.id, `c2-${u.id}`), // a duplicate
    ];
    for (const noOp of noOps) {
      await noOp();
      for (const [i, p] of POLLED.entries()) expect((await get(u.key, p, etag(tags[i]!))).status).toBe(304);
    }
  });

  it("never matches another user's ETag, even at the same version", async () => {
    const [a, b] = [await h.userWithKey(), await h.userWithKey()];
    for (const u of [a, b]) await h.pay(u.id, `d-${u.id}`);
    for (const path of POLLED) {
      const [ra, rb] = [await get(a.key, path), await get(b.key, path)];
      expect(version(ra)).toBe(version(rb));
      expect(etag(ra)).not.toBe(etag(rb));
      expect((await get(b.key, path, etag(ra))).status).toBe(200);
    }
  });

  it.each(POLLED)("%s takes *, lists of ETags and the strong form of its ETag", async (path) => {
    const u = await h.userWithKey();
    const tag = etag(await get(u.key, path));
    expect((await get(u.key, path, "*")).status).toBe(304);
    expect((await get(u.key, path, `W/"nope", ${tag}`)).status).toBe(304);
    expect((await get(u.key, path, `${tag},W/"nope"`)).status).toBe(304);
    expect((await get(u.key, path, tag.replace(/^W\//, ""))).status).toBe(304); // weak comparison
    expect((await get(u.key, path, `"nope", W/"other"`)).status).toBe(200);
  });

  it("checks the key and the query before any 304", async () => {
    const u = await h.userWithKey();
    const tag = etag(await get(u.key, ""));
    expect(isEnvelope(await get(u.key, "?page=0", tag), 400, "invalid_request_error")).toBe(true);
    await h.request("POST", `/admin/v1/keys/${u.keyId}/revoke`, { key: ADMIN_TOKEN });
    expect(isEnvelope(await get(u.key, "", "*"), 401, "authentication_error")).toBe(true);
  });

  it("answers a 304 after one statement: the key and the feed version", async () => {
    // Its own app on a store that logs every statement run.
    const sqls: string[] = [];
    const test = await openTestStore(backend, {
      log: (e) => void (e.level === "query" && sqls.push(e.query.sql)),
    });
    const app = await buildApp({ deps: createDeps(test.store), adminToken: ADMIN_TOKEN });
    const sharded = await test.store.sharded();
    const call = async (url: string, token: string, body?: object, ifNoneMatch?: string) => {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (ifNoneMatch) headers["if-none-match"] = ifNoneMatch;
      const method = body ? "POST" : "GET";
      return app.inject({ method, url, headers, ...(body && { payload: body }) });
    };
    try {
      const user = (await call("/admin/v1/users", ADMIN_TOKEN, { email: "poll@example.com" })).json();
      const { key } = (await call(`/admin/v1/users/${user.id}/keys`, ADMIN_TOKEN, { name: "k" })).json();
      const data = { amount_cents: 1, balance_cents: 1 };
      await call("/admin/v1/events", ADMIN_TOKEN, { id: "p1", type: PAYMENT, user_id: user.id, data });
      for (const path of POLLED) {
        const full = await call(`${FEED}${path}`, key);
        expect(sqls.join("\n")).toMatch(/"feed_counters"/); // the log sees a full answer's reads
        sqls.length = 0;
        expect((await call(`${FEED}${path}`, key, undefined, full.headers.etag as string)).statusCode).toBe(
          304,
        );
        // The key lookup reads the feed version beside the key (and, for unread-count, the count
        // it would answer, in the same statement); no feed row is read. On Citus the key's owner
        // is read first, so the join names its shard.
        const read = sharded ? sqls.splice(0, 1) : [];
        expect(read.map((q) => /^select "user_id" from "api_keys" where "secret_hash" = /.test(q))).toEqual(
          read.map(() => true),
        );
        expect(sqls).toHaveLength(1);
        expect(sqls[0]).toMatch(/ from "api_keys" as "k" inner join "feed_states" as "s"/);
        expect(sqls[0]).not.toMatch(
          path.includes("unread-count") ? /"notifications"/ : /feed_counters|notifications/,
        );
      }
    } finally {
      await app.close();
      await test.drop();
    }
  }, 120_000); // a store of its own: on a Citus cluster, making one takes a while

  it("keeps each poller's version monotonic under 100 concurrent changes", async () => {
    const u = await h.userWithKey();
    for (let i = 0; i < 20; i++) await h.pay(u.id, `seed-${i}-${u.id}`);
    const seeded = [...(await rows(u.key)).keys()];
    const kinds = Array.from({ length: 100 }, (_, i) => (i % 10 === 5 ? "all" : i % 3 === 0 ? "one" : "pay"));
    const changes = kinds.map((kind, i) =>
      kind === "all"
        ? () => post(u.key, "/mark-all-read")
        : kind === "one"
          ? () => post(u.key, `/${seeded[i % seeded.length]}/mark-read`)
          : () => h.pay(u.id, `live-${i}-${u.id}`),
    );
    let done = false;
    const poll = async () => {
      const seen: { version: number; count: number }[] = [];
      while (!done) {
        const r = await get(u.key, "/unread-count");
        seen.push({ version: version(r), count: r.json.count });
        await setImmediate(); // in-process requests on SQLite never yield to the event loop
      }
      return seen;
    };
    const pollers = [poll(), poll(), poll(), poll()];
    // Ten lanes of ten changes each, all running at once, so the pollers' reads fall in between.
    const lanes = Array.from({ length: 10 }, async (_, lane) => {
      const answers: Response[] = [];
      for (let i = lane; i < changes.length; i += 10) answers.push(await changes[i]!());
      return answers;
    });
    const answers = (await Promise.all(lanes)).flat();
    done = true;
    const seen = await Promise.all(pollers);
    for (const poller of seen) expect(new Set(poller.map((p) => p.version)).size).toBeGreaterThan(2);

    expect(answers.every((r) => r.status === 200 || r.status === 202)).toBe(true);
    const countAt = new Map<number, number>();
    for (const poller of seen) {
      for (let i = 1; i < poller.length; i++)
        expect(poller[i]!.version).toBeGreaterThanOrEqual(poller[i - 1]!.version);
      for (const { version: v, count } of poller) {
        expect(countAt.get(v) ?? count, `count at version ${v}`).toBe(count); // one count per version
        countAt.set(v, count);
      }
    }
    const final = await get(u.key, "/unread-count");
    expect(version(final)).toBeGreaterThanOrEqual(Math.max(...countAt.keys()));
    const unread = [...(await rows(u.key)).values()].filter((r) => r.read_at === null).length;
    expect(final.json.count).toBe(await total(u.key, "unread=true"));
    expect(final.json.count).toBe(unread);
    const added = 20 + kinds.filter((k) => k === "pay").length;
    expect(await total(u.key, "")).toBe(added);
    expect(await total(u.key, "read=true")).toBe(added - unread);
  });

  describe("mark-all-read as a read watermark", () => {
    it("gives covered rows the mark-all time and keeps earlier reads", async () => {
      const t0 = at(now + 1000);
      const u = await h.userWithKey();
      for (const n of [1, 2, 3, 4]) await h.pay(u.id, `m${n}-${u.id}`);
      await balanceLow(u.id, `low-${u.id}`);
      const [r1, r2, r3] = [...(await rows(u.key)).keys()].sort((a, b) => a - b) as [number, number, number];
      now = t0 + 10;
      expect((await post(u.key, `/${r1}/mark-read`)).json.read_at).toBe(iso(t0 + 10));
      expect(await total(u.key, "read=true")).toBe(1);
      expect(await total(u.key, "unread=true")).toBe(4);

      const t1 = at(t0 + 100);
      const before = version(await get(u.key, "/unread-count"));
      expect((await post(u.key, "/mark-all-read")).json).toEqual({ marked_read: 4 });
      const after = await rows(u.key);
      for (const [id, r] of after) expect(r.read_at, `row ${id}`).toBe(id === r1 ? iso(t0 + 10) : iso(t1));
      expect(await total(u.key, "read=true")).toBe(5);
      expect((await get(u.key, "?unread=true")).json).toMatchObject({ items: [], total: 0 });
      expect(await total(u.key, "read=true&type=system.balance.notify.dispatched")).toBe(1);
      expect(await total(u.key, "unread=true&type=system.payment.received")).toBe(0);
      const marked = await get(u.key, "/unread-count");
      expect(marked.json).toEqual({ count: 0 });
      expect(version(marked)).toBe(before + 1);

      now = t1 + 5;
      expect((await post(u.key, "/mark-all-read")).json).toEqual({ marked_read: 0 });
      const again = await post(u.key, `/${r3}/mark-read`);
      expect(again.json).toEqual({ id: r3, type: PAYMENT, read_at: iso(t1) });
      expect((await rows(u.key)).get(r2)!.read_at).toBe(iso(t1));
      expect(version(await get(u.key, "/unread-count"))).toBe(before + 1);
    });

    it("leaves later rows unread until a later mark-all covers only them", async () => {
      const t0 = at(now + 1000);
      const u = await h.userWithKey();
      for (const n of [1, 2]) await h.pay(u.id, `old${n}-${u.id}`);
      const t1 = at(t0 + 100);
      await post(u.key, "/mark-all-read");
      const old = [...(await rows(u.key)).keys()];

      now = t1 + 50;
      await h.pay(u.id, `new-${u.id}`);
      await balanceLow(u.id, `low-${u.id}`);
      await h.pay(u.id, `past-${u.id}`, undefined, { occurred_at: iso(t0 - 86_400) }); // back-dated
      const fresh = [...(await rows(u.key)).keys()].filter((id) => !old.includes(id)).sort((a, b) => a - b);
      expect(fresh).toHaveLength(3);
      expect((await get(u.key, "/unread-count")).json).toEqual({ count: 3 });
      const unread = (await get(u.key, "?unread=true")).json;
      expect(unread.total).toBe(3);
      expect(unread.items.map((i: { id: number }) => i.id).sort((a: number, b: number) => a - b)).toEqual(
        fresh,
      );
      expect(await total(u.key, "unread=true&type=system.payment.received")).toBe(2);
      expect(await total(u.key, "unread=true&type=system.balance.notify.dispatched")).toBe(1);

      now = t1 + 60;
      const [paid, low, past] = fresh as [number, number, number];
      expect((await post(u.key, `/${paid}/mark-read`)).json.read_at).toBe(iso(t1 + 60));
      expect(await total(u.key, "unread=true&type=system.payment.received")).toBe(1);
      expect(await total(u.key, "read=true&type=system.payment.received")).toBe(3);

      const t2 = at(t1 + 200);
      expect((await post(u.key, "/mark-all-read")).json).toEqual({ marked_read: 2 });
      const all = await rows(u.key);
      for (const id of old) expect(all.get(id)!.read_at).toBe(iso(t1));
      expect(all.get(paid)!.read_at).toBe(iso(t1 + 60));
      expect(all.get(low)!.read_at).toBe(iso(t2));
      expect(all.get(past)!.read_at).toBe(iso(t2));
      expect(await total(u.key, "read=true")).toBe(5);
      expect(await total(u.key, "read=true&type=system.payment.received")).toBe(4);
      expect(await total(u.key, "read=true&type=system.balance.notify.dispatched")).toBe(1);
      expect(await total(u.key, "unread=true&type=system.balance.notify.dispatched")).toBe(0);
      expect((await get(u.key, "/unread-count")).json).toEqual({ count: 0 });
    });
  });
});

describe.each(BACKENDS)("poll interval setting on %s", (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend, {}, { pollIntervalS: 15 });
  });
  afterAll(() => h.close());

  it.each(POLLED)("%s says X-Poll-Interval: 15, on 200 and 304", async (path) => {
    const u = await h.userWithKey();
    const r = await h.request("GET", `${FEED}${path}`, { key: u.key });
    expect(r.headers["x-poll-interval"]).toBe("15");
    const again = await h.request("GET", `${FEED}${path}`, {
      key: u.key,
      headers: { "if-none-match": etag(r) },
    });
    expect(again.status).toBe(304);
    expect(again.headers["x-poll-interval"]).toBe("15");
  });
});
