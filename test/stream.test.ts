import { randomBytes } from "node:crypto";
import { type IncomingMessage, request, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDeps } from "../src/deps.js";
import { buildApp } from "../src/http/app.js";
import { openStore } from "../src/store/store.js";
import { BACKENDS, PG_ADMIN_URL } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, startHarness } from "./support/harness.js";
import { iso } from "./support/iso.js";
import { openSse, type SseClient, type SseEvent } from "./support/sse.js";

const FEED = "/api/v1/me/notifications";
const PAYMENT = "system.payment.received";
const T0 = 1_780_000_000;

/** Rejects when `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms).then(() => Promise.reject(new Error(`${what}: not within ${ms} ms`))),
  ]);
}

/** True when `promise` is still pending after `ms`. */
const stillPending = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => false), sleep(ms).then(() => true)]);

const named = (events: SseEvent[], name: string) => events.filter((e) => e.event === name);
const ids = (events: SseEvent[]) => named(events, "notification").map((e) => Number(e.id));

/** Waits until `c` has `n` notifications (or ends), then expects exactly that many. */
async function receive(c: SseClient, n: number, timeoutMs = 10_000) {
  await Promise.race([c.waitFor((e) => ids(e).length >= n, timeoutMs), c.ended]);
  expect(ids(c.events)).toHaveLength(n);
}

/** Every `unread-count` version is larger than the one before it. */
function expectVersionsIncrease(events: SseEvent[]) {
  const versions = named(events, "unread-count").map((e) => e.json.version as number);
  for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1]!);
}

/** A harness listening on 127.0.0.1, whose SSE clients are closed after each test. */
function liveHarness(backend: (typeof BACKENDS)[number], options: Parameters<typeof startHarness>[2] = {}) {
  const live = { h: undefined as unknown as Harness, base: "", now: T0 };
  const clients: { close(): void }[] = [];
  beforeAll(async () => {
    live.h = await startHarness(backend, { clock: () => live.now }, options);
    await live.h.app.listen({ port: 0, host: "127.0.0.1" });
    live.base = `http://127.0.0.1:${(live.h.app.server.address() as { port: number }).port}`;
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(() => live.h.close());
  const open = async (path: string, headers: Record<string, string> = {}) => {
    const c = await openSse(`${live.base}${FEED}/stream${path}`, headers);
    clients.push(c);
    return c;
  };
  /** A stream for `key`, waited on until its first event. */
  const stream = async (key: string, headers: Record<string, string> = {}, query = "") => {
    const c = await open(query, { authorization: `Bearer ${key}`, ...headers });
    await c.waitFor((e) => e.length > 0);
    return c;
  };
  return { live, open, stream, track: (c: { close(): void }) => clients.push(c) };
}

describe.each(BACKENDS)("live stream on %s", (backend) => {
  const { live, open, stream, track } = liveHarness(backend);
  const h = () => live.h;
  const list = async (key: string, query = "") => (await h().request("GET", `${FEED}${query}`, { key })).json;
  const post = (key: string, path: string) => h().request("POST", `${FEED}${path}`, { key });
  const batch = (userId: number, n: number, tag: string, body?: string) =>
    h().request("POST", "/admin/v1/events/batch", {
      key: ADMIN_TOKEN,
      body: {
        events: Array.from({ length: n }, (_, i) => ({
          id: `${tag}-${i}`,
          type: PAYMENT,
          user_id: userId,
          data: { amount_cents: 100 + i, balance_cents: 1 },
          ...(body && { body }),
        })),
      },
    });

  it("sends the count on connect, then every change in order, without duplicates", async () => {
    const u = await h().userWithKey();
    await h().pay(u.id, `a-${u.id}`);
    const v0 = Number(
      (await h().request("GET", `${FEED}/unread-count`, { key: u.key })).headers["x-feed-version"],
    );
    const c = await stream(u.key);
    expect(c.status).toBe(200);
    expect(c.headers["content-type"]).toMatch(/^text\/event-stream/);

    await h().pay(u.id, `b-${u.id}`);
    await c.waitFor((e) => e.length >= 3);
    const row = (await list(u.key)).items[0]; // the row as the list shows it
    expect(c.events[1]!.id).toBe(String(row.id));
    await post(u.key, `/${row.id}/mark-read`);
    await c.waitFor((e) => e.length >= 5);
    await post(u.key, "/mark-all-read");
    await c.waitFor((e) => e.length >= 7);
    // No-ops and another user's rows send nothing; a last row shows nothing slipped in before it.
    await post(u.key, `/${row.id}/mark-read`);
    await post(u.key, "/mark-all-read");
    const other = await h().userWithKey();
    await h().pay(other.id, `o-${other.id}`);
    await h().pay(u.id, `c-${u.id}`);
    await c.waitFor((e) => e.length >= 9);
    await sleep(200);
    const last = (await list(u.key)).items[0];
    expect(c.events.map((e) => [e.event, e.json])).toEqual([
      ["unread-count", { count: 1, version: v0 }],
      ["notification", row],
      ["unread-count", { count: 2, version: v0 + 1 }],
      ["read", { ids: [row.id] }],
      ["unread-count", { count: 1, version: v0 + 2 }],
      ["read", { all: true }],
      ["unread-count", { count: 0, version: v0 + 3 }],
      ["notification", last],
      ["unread-count", { count: 1, version: v0 + 4 }],
    ]);
    expect(c.events[7]!.id).toBe(String(last.id));
    expectVersionsIncrease(c.events);
  });

  it.each([
    ["the Last-Event-ID header", (id: number) => [{ "last-event-id": String(id) }, ""] as const],
    ["?last_event_id=", (id: number) => [{}, `?last_event_id=${id}`] as const],
  ])("resumes after %s with no gap and no duplicate", async (_how, resume) => {
    const u = await h().userWithKey();
    for (const n of [1, 2]) await h().pay(u.id, `r${n}-${u.id}`);
    const first = await stream(u.key);
    await h().pay(u.id, `r3-${u.id}`);
    await first.waitFor((e) => ids(e).length === 1);
    const seen = ids(first.events)[0]!;
    first.close();

    await h().pay(u.id, `r4-${u.id}`);
    await h().pay(u.id, `r5-${u.id}`, undefined, { occurred_at: "2020-01-01T00:00:00Z" }); // back-dated
    await batch(u.id, 3, `r6-${u.id}`);
    const missed = (await list(u.key, "?page_size=200")).items
      .map((i: { id: number }) => i.id)
      .filter((id: number) => id > seen)
      .sort((a: number, b: number) => a - b);
    expect(missed).toHaveLength(5);

    const [headers, query] = resume(seen);
    const c = await stream(u.key, headers, query);
    await c.waitFor((e) => ids(e).length === 5);
    expect(c.events[0]).toMatchObject({ event: "unread-count", json: { count: 8 } });
    expect(ids(c.events)).toEqual(missed);
    await h().pay(u.id, `r7-${u.id}`);
    await c.waitFor((e) => ids(e).length === 6 && e.at(-1)?.event === "unread-count");
    const newest = (await list(u.key)).items[0].id;
    expect(ids(c.events)).toEqual([...missed, newest]);
    expect(c.events.at(-1)!.json.count).toBe(9);
    expect(named(c.events, "reset")).toEqual([]);
  });

  it("replays up to 1,000 missed rows and sends a reset for 1,001", async () => {
    const u = await h().userWithKey();
    await h().pay(u.id, `anchor-${u.id}`);
    const anchor = (await list(u.key)).items[0].id as number;
    expect((await batch(u.id, 1000, `k-${u.id}`)).status).toBe(202);
    const full = await stream(u.key, { "last-event-id": String(anchor) });
    await full.waitFor((e) => ids(e).length === 1000, 15_000);
    const replayed = ids(full.events);
    expect(replayed.every((id, i) => id > (replayed[i - 1] ?? anchor))).toBe(true);
    expect(replayed.at(-1)).toBe((await list(u.key)).items[0].id);
    full.close();

    await h().pay(u.id, `one-more-${u.id}`);
    const c = await stream(u.key, { "last-event-id": String(anchor) });
    await c.waitFor((e) => e.some((x) => x.event === "reset"));
    expect(c.events.map((e) => e.event)).toEqual(["unread-count", "reset"]);
    await h().pay(u.id, `live-${u.id}`);
    await c.waitFor((e) => ids(e).length === 1);
    expect(ids(c.events)).toEqual([(await list(u.key)).items[0].id]);
  });

  it("keeps a reading client through a burst bigger than its send buffer", async () => {
    const u = await h().userWithKey();
    await h().pay(u.id, `anchor-${u.id}`);
    const anchor = (await list(u.key)).items[0].id as number;
    const listening = await stream(u.key);
    // 1,000 rows of about 2.3 kB: some 2.3 MB at once, over the default 1 MiB buffer.
    expect((await batch(u.id, 1000, `big-${u.id}`, "x".repeat(2000))).status).toBe(202);
    const resumed = await stream(u.key, { "last-event-id": String(anchor) });
    for (const c of [listening, resumed]) {
      await receive(c, 1000, 15_000);
      expect(await stillPending(c.ended, 100)).toBe(true);
    }
  });

  it.each(["abc", "-1", "1.5", "12abc"])("refuses a malformed Last-Event-ID %s with a 400", async (bad) => {
    const u = await h().userWithKey();
    const header = await h().request("GET", `${FEED}/stream`, {
      key: u.key,
      headers: { "last-event-id": bad },
    });
    expect(isEnvelope(header, 400, "invalid_request_error")).toBe(true);
    const query = await h().request("GET", `${FEED}/stream?last_event_id=${encodeURIComponent(bad)}`, {
      key: u.key,
    });
    expect(isEnvelope(query, 400, "invalid_request_error")).toBe(true);
  });

  describe("tickets", () => {
    const issue = async (key: string) => {
      const r = await post(key, "/stream-tickets");
      expect(r.status).toBe(200);
      return r.json as { ticket: string; expires_at: string };
    };
    const byTicket = (ticket: string) => h().request("GET", `${FEED}/stream?ticket=${ticket}`);

    it("issues a ticket valid for 60 s that opens a stream without a header", async () => {
      const u = await h().userWithKey();
      await h().pay(u.id, `t-${u.id}`);
      const t = await issue(u.key);
      expect(Object.keys(t)).toEqual(["ticket", "expires_at"]);
      expect(t.ticket).toMatch(/^bft_[A-Za-z0-9_-]{32,}$/);
      expect(t.expires_at).toBe(iso(live.now + 60));
      const c = await open(`?ticket=${t.ticket}`);
      expect(c.status).toBe(200);
      await c.waitFor((e) => e.length > 0);
      expect(c.events[0]).toMatchObject({ event: "unread-count", json: { count: 1 } });

      const late = await issue(u.key);
      live.now += 59;
      const ok = await open(`?ticket=${late.ticket}`);
      expect(ok.status).toBe(200);
    });

    it("reopens with the same ticket until it expires, one stream at a time: the newer closes the older", async () => {
      const u = await h().userWithKey();
      const t = (await issue(u.key)).ticket;
      const first = await open(`?ticket=${t}`);
      await first.waitFor((e) => e.length > 0);
      // EventSource's own reconnect re-sends the ticket (and Last-Event-ID): it is served, and the
      // older stream on that ticket ends (a half-open connection the server has not noticed yet).
      await h().pay(u.id, `r1-${u.id}`);
      await first.waitFor((e) => ids(e).length === 1);
      const again = await open(`?ticket=${t}`, { "last-event-id": String(ids(first.events)[0]! - 1) });
      expect(again.status).toBe(200);
      await within(first.ended, 1000, "the older stream on the ticket ends");
      await again.waitFor((e) => ids(e).length === 1);
      expect(ids(again.events)).toEqual(ids(first.events));
      expect(await stillPending(again.ended, 300)).toBe(true);

      // Two opens at the same moment: both are served, exactly one stays open.
      const raced = (await issue(u.key)).ticket;
      const both = await Promise.all([open(`?ticket=${raced}`), open(`?ticket=${raced}`)]);
      expect(both.map((b) => b.status)).toEqual([200, 200]);
      await within(Promise.race(both.map((b) => b.ended)), 1000, "one of two streams on one ticket ends");
      await sleep(200);
      const open2 = await Promise.all(both.map((b) => stillPending(b.ended, 50)));
      expect(open2.filter(Boolean)).toHaveLength(1);
    });

    it("refuses expired, unknown and revoked-key tickets, and no credentials at all", async () => {
      const u = await h().userWithKey();
      const expired = await issue(u.key);
      live.now += 61;
      expect(isEnvelope(await byTicket(expired.ticket), 401, "authentication_error")).toBe(true);
      const unknown = `bft_${randomBytes(32).toString("base64url")}`;
      expect(isEnvelope(await byTicket(unknown), 401, "authentication_error")).toBe(true);
      expect(isEnvelope(await byTicket("nope"), 401, "authentication_error")).toBe(true);
      const revoked = await issue(u.key);
      await h().request("POST", `/admin/v1/keys/${u.keyId}/revoke`, { key: ADMIN_TOKEN });
      expect(isEnvelope(await byTicket(revoked.ticket), 401, "authentication_error")).toBe(true);
      expect(isEnvelope(await h().request("GET", `${FEED}/stream`), 401, "authentication_error")).toBe(true);
      expect(isEnvelope(await post(u.key, "/stream-tickets"), 401, "authentication_error")).toBe(true);
    });
  });

  describe("revocation", () => {
    it("closes the revoked key's streams within a second, and only those", async () => {
      const u = await h().userWithKey();
      const k2 = await h().request("POST", `/admin/v1/users/${u.id}/keys`, {
        key: ADMIN_TOKEN,
        body: { name: "second" },
      });
      const a = await stream(u.key);
      const ticket = (await post(u.key, "/stream-tickets")).json.ticket;
      const t = await open(`?ticket=${ticket}`);
      const b = await stream(k2.json.key);
      await h().request("POST", `/admin/v1/keys/${u.keyId}/revoke`, { key: ADMIN_TOKEN });
      await within(Promise.all([a.ended, t.ended]), 1000, "revoked streams end");
      // The other key hears of the revocation (an admin.api_key.revoke row) and stays open.
      await b.waitFor((e) => named(e, "notification").length === 1);
      expect(named(b.events, "notification")[0]!.json.type).toBe("admin.api_key.revoke");
      expect(await stillPending(b.ended, 500)).toBe(true);
    });

    it("closes a removed member's org-key stream and keeps their personal one", async () => {
      const owner = await h().userWithKey("owner");
      const m = await h().userWithKey("member");
      const admin = { key: ADMIN_TOKEN };
      const org = await h().request("POST", "/admin/v1/orgs", {
        ...admin,
        body: { name: "Acme", owner_user_id: owner.id },
      });
      const orgPath = `/admin/v1/orgs/${org.json.id}`;
      await h().request("POST", `${orgPath}/members`, { ...admin, body: { user_id: m.id, role: "member" } });
      const orgKey = await h().request("POST", `${orgPath}/keys`, {
        ...admin,
        body: { user_id: m.id, name: "ci" },
      });
      const viaOrg = await stream(orgKey.json.key);
      const personal = await stream(m.key);
      expect((await h().request("DELETE", `${orgPath}/members/${m.id}`, admin)).status).toBe(204);
      await within(viaOrg.ended, 1000, "the org key's stream ends");
      await h().pay(m.id, `after-${m.id}`);
      await personal.waitFor((e) => ids(e).length === 1);
      expect(await stillPending(personal.ended, 300)).toBe(true);
    });
  });

  if (backend === "postgres")
    it("carries changes and revocations across instances", async () => {
      const db = (await sql<{ name: string }>`select current_database() as name`.execute(h().store.db))
        .rows[0]!;
      const url = new URL(PG_ADMIN_URL);
      url.pathname = `/${db.name}`;
      const store = openStore(url.toString());
      const other = await buildApp({ deps: createDeps(store), adminToken: ADMIN_TOKEN });
      try {
        await other.listen({ port: 0, host: "127.0.0.1" });
        const port = (other.server.address() as { port: number }).port;
        const u = await h().userWithKey();
        const c = await openSse(`http://127.0.0.1:${port}${FEED}/stream`, {
          authorization: `Bearer ${u.key}`,
        });
        track(c);
        await c.waitFor((e) => e.length > 0);
        await h().pay(u.id, `x-${u.id}`);
        await c.waitFor((e) => e.length >= 3);
        const id = ids(c.events)[0]!;
        await post(u.key, `/${id}/mark-read`);
        await c.waitFor((e) => e.length >= 5);
        const names = ["unread-count", "notification", "unread-count", "read", "unread-count"];
        expect(c.events.map((e) => e.event)).toEqual(names);
        expect(c.events[4]!.json.count).toBe(0);
        expectVersionsIncrease(c.events);
        await h().request("POST", `/admin/v1/keys/${u.keyId}/revoke`, { key: ADMIN_TOKEN });
        await within(c.ended, 1000, "the other instance's stream ends");
      } finally {
        await other.close();
        await store.close();
      }
    });
});

describe.each(BACKENDS)("live stream upkeep on %s", (backend) => {
  describe("heartbeats", () => {
    const { live, stream, open } = liveHarness(backend, { stream: { heartbeatS: 1 } });

    it("sends a heartbeat comment about every second and nothing else", async () => {
      const u = await live.h.userWithKey();
      const c = await stream(u.key);
      const start = Date.now();
      const at = [start];
      while (at.length < 4 && Date.now() - start < 5000) {
        if (c.comments >= at.length) at.push(Date.now());
        await sleep(20);
      }
      expect(at).toHaveLength(4);
      const gaps = at.slice(1).map((t, i) => t - at[i]!);
      for (const gap of gaps) expect(gap, `gaps ${gaps}`).toBeGreaterThan(600);
      for (const gap of gaps) expect(gap, `gaps ${gaps}`).toBeLessThan(1500);
      expect(c.events.map((e) => e.event)).toEqual(["unread-count"]);
    });

    it("keeps a streaming ticket alive past its first minute, and lets it lapse once the stream is gone", async () => {
      const u = await live.h.userWithKey();
      const t = (await live.h.request("POST", `${FEED}/stream-tickets`, { key: u.key })).json;
      const c = await open(`?ticket=${t.ticket}`);
      await c.waitFor((e) => e.length > 0);
      // Ten minutes later with the stream open all along: its heartbeats (1 s here) renewed the
      // ticket, so a drop now still reconnects with it.
      live.now += 600;
      const heartbeats = c.comments;
      await within(
        (async () => {
          while (c.comments < heartbeats + 2) await sleep(50);
        })(),
        5000,
        "two heartbeats",
      );
      c.close();
      await sleep(100);
      const reopened = await open(`?ticket=${t.ticket}`);
      expect(reopened.status).toBe(200);
      reopened.close();
      // Without a stream nothing renews it: past its TTL it is refused and a new ticket is needed.
      await sleep(100);
      live.now += 62 + 1;
      expect(
        isEnvelope(
          await live.h.request("GET", `${FEED}/stream?ticket=${t.ticket}`),
          401,
          "authentication_error",
        ),
      ).toBe(true);
    });
  });

  describe("slow clients", () => {
    const { live, stream, track } = liveHarness(backend, { stream: { maxBufferBytes: 256 * 1024 } });
    /** The server side of each stream, by the client's port. */
    const served = new Map<number, ServerResponse>();
    beforeAll(() => {
      live.h.app.server.on("request", (req, res) => served.set(req.socket.remotePort ?? 0, res));
    });
    const connections = () =>
      new Promise<number>((resolve) => live.h.app.server.getConnections((_e, n) => resolve(n)));

    /** A stream that is never read (the client stops consuming at once), and its server side. */
    const pausedStream = (key: string) =>
      new Promise<{ res: IncomingMessage; server: ServerResponse; socket: Socket }>((resolve, reject) => {
        const req = request(`${live.base}${FEED}/stream`, { headers: { authorization: `Bearer ${key}` } });
        track({ close: () => req.destroy() });
        req.on("error", reject);
        req.on("response", (res) => {
          res.on("error", () => {}).pause();
          const server = served.get(req.socket?.localPort ?? -1)!;
          resolve({ res, server, socket: server.socket! });
        });
        req.end();
      });

    /**
     * A paused client and a reading one of the same user; then bursts of 80 rows of ~2.3 kB, each
     * within the buffer (so the reader keeps up), until the server gives up on the paused one
     * (after some MB: the kernel's socket buffers take theirs first) — or 40 MB went out.
     */
    async function overflow() {
      const u = await live.h.userWithKey();
      const slow = await pausedStream(u.key);
      const normal = await stream(u.key);
      const body = "x".repeat(2000);
      const data = { amount_cents: 1, balance_cents: 1 };
      let sent = 0;
      while (!(slow.server.writableEnded || slow.server.destroyed) && sent < 80 * 220) {
        const id = (i: number) => `big-${u.id}-${sent + i}`;
        const events = Array.from({ length: 80 }, (_, i) => ({
          id: id(i),
          type: PAYMENT,
          user_id: u.id,
          data,
          body,
        }));
        await live.h.request("POST", "/admin/v1/events/batch", { key: ADMIN_TOKEN, body: { events } });
        sent += 80;
        await receive(normal, sent);
      }
      return { u, slow, normal, sent };
    }

    it("stops writing to a client that stops reading, while a reading one carries on", async () => {
      const { u, slow, normal, sent } = await overflow();
      // Read what the paused client was sent: it ends, before the last rows.
      let received = "";
      const ended = new Promise<void>((resolve) => {
        slow.res.on("data", (chunk: Buffer) => (received += chunk.toString("utf8")));
        slow.res.on("end", resolve);
        slow.res.on("close", resolve);
      });
      slow.res.resume();
      await within(ended, 5000, "the slow client's stream ends");
      expect([...received.matchAll(/^id: \d+$/gm)].length).toBeLessThan(sent);
      expect(await stillPending(normal.ended, 100)).toBe(true);
      await live.h.pay(u.id, `after-${u.id}`);
      await receive(normal, sent + 1);
    }, 120_000); // filling the buffer takes hundreds of rows: slow on a cluster under load

    it("lets go of the cut-off client's connection within a second", async () => {
      const { slow } = await overflow();
      const deadline = Date.now() + 1000;
      while (!slow.socket.destroyed && Date.now() < deadline) await sleep(50);
      expect(slow.socket.destroyed, "the server-side socket is closed").toBe(true);
      expect(await connections(), "open connections: the reading client's only").toBe(1);
    }, 120_000); // filling the buffer takes hundreds of rows: slow on a cluster under load
  });

  describe("shutdown", () => {
    const { live, stream } = liveHarness(backend);

    it("ends open streams promptly when the app closes", async () => {
      const u = await live.h.userWithKey();
      const streams = [await stream(u.key), await stream(u.key)];
      await within(live.h.app.close(), 2000, "app.close()");
      await within(Promise.all(streams.map((s) => s.ended)), 500, "streams end");
    });
  });
});
