import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { emptyChanges } from "../src/bus/change-bus.js";
import { decodeChanges, encodeChanges } from "../src/bus/wire.js";
import { createDeps } from "../src/deps.js";
import { buildApp } from "../src/http/app.js";
import { MAX_SESSIONS_PER_USER } from "../src/identity/sessions.js";
import { BACKENDS, openTestStore } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, type Response, startHarness } from "./support/harness.js";
import { iso } from "./support/iso.js";
import { openSse, type SseClient } from "./support/sse.js";

const T0 = 1_779_437_280; // 2026-05-22T08:08:00Z
const FEED = "/api/v1/me/notifications";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const is401 = (r: Response) => isEnvelope(r, 401, "authentication_error");
const is400 = (r: Response) => isEnvelope(r, 400, "invalid_request_error");

/** True when `promise` is still pending after `ms`. */
const stillPending = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => false), sleep(ms).then(() => true)]);
/** Rejects when `promise` has not settled within `ms` (a deadline for waiting, not a timing claim). */
const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`${what}: not within ${ms} ms`)))]);

describe.each(BACKENDS)("browser sessions on %s", (backend) => {
  let h: Harness;
  let base: string;
  let now = T0;
  const clients: SseClient[] = [];
  beforeAll(async () => {
    h = await startHarness(backend, { clock: () => now });
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(() => h.close());

  const mint = (userId: number | string, body?: unknown) =>
    h.request("POST", `/admin/v1/users/${userId}/sessions`, { key: ADMIN_TOKEN, body });
  const session = async (userId: number, ttl?: number) => {
    const r = await mint(userId, ttl === undefined ? undefined : { ttl_seconds: ttl });
    expect(r.status, r.text).toBe(201);
    return r.json.token as string;
  };
  const end = (userId: number | string) =>
    h.request("DELETE", `/admin/v1/users/${userId}/sessions`, { key: ADMIN_TOKEN });
  const count = (key: string) => h.request("GET", `${FEED}/unread-count`, { key });
  const rows = async (userId: number) =>
    (await h.store.db.selectFrom("sessions").select("id").where("user_id", "=", userId).execute()).length;
  const stream = async (headers: Record<string, string>, query = "") => {
    const c = await openSse(`${base}${FEED}/stream${query}`, headers);
    clients.push(c);
    if (c.status === 200) await c.waitFor((e) => e.length > 0);
    return c;
  };
  const ticketFor = async (token: string) => {
    const r = await h.request("POST", `${FEED}/stream-tickets`, { key: token });
    expect(r.status, r.text).toBe(200);
    return r.json.ticket as string;
  };

  describe("minting", () => {
    it("answers 201 {token, user_id, expires_at} with the default hour, keeping only the SHA-256", async () => {
      const u = await h.userWithKey();
      const r = await mint(u.id);
      expect(r.status).toBe(201);
      expect(Object.keys(r.json)).toEqual(["token", "user_id", "expires_at"]);
      expect(r.json.token).toMatch(/^bfs_[A-Za-z0-9_-]{43}$/);
      expect(r.json).toEqual({ token: r.json.token, user_id: u.id, expires_at: iso(now + 3600) });
      const [row] = await h.store.db.selectFrom("sessions").selectAll().where("user_id", "=", u.id).execute();
      expect(row!.secret_hash).toBe(sha256(r.json.token));
      for (const [column, value] of Object.entries(row!))
        expect(String(value), column).not.toContain(r.json.token.slice(4));
      // Signing in is not news: no feed row, and the token works at once.
      expect((await count(r.json.token)).json).toEqual({ count: 0 });
      // Tokens are random: a second session of the same user is another token.
      expect(await session(u.id)).not.toBe(r.json.token);
    });

    it.each([
      ["{}", {}, 3600],
      ["the minimum", { ttl_seconds: 60 }, 60],
      ["the maximum", { ttl_seconds: 86_400 }, 86_400],
      ["an ordinary value", { ttl_seconds: 900 }, 900],
    ])("takes %s as ttl_seconds", async (_, body, ttl) => {
      const u = await h.userWithKey();
      const r = await mint(u.id, body);
      expect(r.status).toBe(201);
      expect(r.json.expires_at).toBe(iso(now + ttl));
    });

    it.each([
      ["59", '{"ttl_seconds":59}'],
      ["86401", '{"ttl_seconds":86401}'],
      ["1.5", '{"ttl_seconds":1.5}'],
      ["0", '{"ttl_seconds":0}'],
      ["-60", '{"ttl_seconds":-60}'],
      ["1e400", '{"ttl_seconds":1e400}'],
      ['"60"', '{"ttl_seconds":"60"}'],
      ["null", '{"ttl_seconds":null}'],
      ["an unknown field", '{"ttl":60}'],
      ["an unknown field beside a good one", '{"ttl_seconds":60,"user_id":1}'],
      ["an array body", "[]"],
      ["an array of the object", '[{"ttl_seconds":60}]'],
      ["a null body", "null"],
      ["a string body", '"x"'],
      ["malformed JSON", '{"ttl_seconds":'],
    ])("refuses %s with a 400 envelope, minting nothing", async (_, raw) => {
      const u = await h.userWithKey();
      const r = await h.request("POST", `/admin/v1/users/${u.id}/sessions`, {
        key: ADMIN_TOKEN,
        raw,
        headers: { "content-type": "application/json" },
      });
      expect(is400(r), r.text).toBe(true);
      expect(await rows(u.id)).toBe(0);
    });

    it("names the field and the range in the message", async () => {
      const u = await h.userWithKey();
      expect((await mint(u.id, { ttl_seconds: 59 })).json.error.message).toBe(
        "ttl_seconds must be an integer from 60 to 86400 (seconds)",
      );
      expect((await mint(u.id, { nope: 1 })).json.error.message).toBe("nope is not a known field");
    });

    it("answers 404 for a user that does not exist, or an id that cannot name one", async () => {
      for (const id of ["999999999", "0", "abc", "1.5", "-1"]) {
        expect(isEnvelope(await mint(id), 404, "not_found_error"), id).toBe(true);
        expect(isEnvelope(await end(id), 404, "not_found_error"), id).toBe(true);
      }
    });

    it("needs the admin token: a user key, a session or nothing → 401", async () => {
      const u = await h.userWithKey();
      const token = await session(u.id);
      const url = `/admin/v1/users/${u.id}/sessions`;
      for (const key of [u.key, token, undefined]) {
        expect(is401(await h.request("POST", url, { key, body: {} }))).toBe(true);
        expect(is401(await h.request("DELETE", url, { key }))).toBe(true);
      }
      expect(await rows(u.id)).toBe(1);
    });

    it("ends the oldest session when a user already holds the maximum", async () => {
      const u = await h.userWithKey();
      const oldest = await session(u.id);
      const c = await stream({ authorization: `Bearer ${oldest}` });
      for (let i = 1; i < MAX_SESSIONS_PER_USER; i++) expect((await mint(u.id)).status).toBe(201);
      expect(await rows(u.id)).toBe(MAX_SESSIONS_PER_USER);
      expect((await count(oldest)).status).toBe(200);
      const newest = await session(u.id);
      expect(await rows(u.id)).toBe(MAX_SESSIONS_PER_USER);
      expect(is401(await count(oldest))).toBe(true);
      expect((await count(newest)).status).toBe(200);
      await within(c.ended, 5000, "the pruned session's stream ends");
    });

    it("sweeps sessions that expired more than a day ago when another is minted", async () => {
      const old = await h.userWithKey();
      const stale = await session(old.id, 60);
      now += 61;
      expect((await count(stale)).json.error.message).toBe("This session has expired.");
      expect(await rows(old.id)).toBe(1); // kept a while, so its holder hears "expired"
      now += 86_400;
      const other = await h.userWithKey();
      await session(other.id);
      expect(await rows(old.id)).toBe(0);
      expect(is401(await count(stale))).toBe(true);
    });
  });

  describe("authentication", () => {
    it("reads and marks the feed, the count (with 304s) and the settings as its user", async () => {
      const u = await h.userWithKey();
      for (const n of [1, 2, 3]) await h.pay(u.id, `s${n}-${u.id}`);
      const token = await session(u.id);
      const list = await h.request("GET", `${FEED}?unread=true`, { key: token });
      expect(list.status).toBe(200);
      expect(list.json).toEqual((await h.request("GET", `${FEED}?unread=true`, { key: u.key })).json);
      expect(list.json.total).toBe(3);
      const counted = await count(token);
      expect(counted.json).toEqual({ count: 3 });
      const etag = String(counted.headers.etag);
      const cached = await h.request("GET", `${FEED}/unread-count`, {
        key: token,
        headers: { "if-none-match": etag },
      });
      expect(cached.status).toBe(304);
      expect(cached.text).toBe("");

      const first = list.json.items[0];
      const marked = await h.request("POST", `${FEED}/${first.id}/mark-read`, { key: token });
      expect(marked.json).toEqual({ id: first.id, type: first.type, read_at: iso(now) });
      expect((await h.request("POST", `${FEED}/mark-all-read`, { key: token })).json).toEqual({
        marked_read: 2,
      });
      expect((await count(u.key)).json).toEqual({ count: 0 });

      const muted = { muted_types: ["system.payment.received"] };
      expect(
        (await h.request("PUT", "/api/v1/me/notification-settings", { key: token, body: muted })).json,
      ).toEqual(muted);
      const settings = await h.request("GET", "/api/v1/me/notification-settings", { key: u.key });
      expect(settings.json).toEqual(muted);
      expect((await h.request("GET", "/api/v1/me/notification-settings", { key: token })).json).toEqual(
        muted,
      );
    });

    it("opens the stream with the token and with a ticket it minted", async () => {
      const u = await h.userWithKey();
      await h.pay(u.id, `st-${u.id}`);
      const token = await session(u.id);
      const direct = await stream({ authorization: `Bearer ${token}` });
      expect(direct.status).toBe(200);
      expect(direct.events[0]).toMatchObject({ event: "unread-count", json: { count: 1 } });
      const viaTicket = await stream({}, `?ticket=${await ticketFor(token)}`);
      expect(viaTicket.status).toBe(200);
      await h.pay(u.id, `st2-${u.id}`);
      for (const c of [direct, viaTicket]) await c.waitFor((e) => e.some((x) => x.event === "notification"));
    });

    it.each([
      ["GET", "/api/v1/me/webhooks", undefined, "webhooks"],
      ["POST", "/api/v1/me/webhooks", { url: "https://hooks.example.com/x" }, "webhooks"],
      ["GET", "/api/v1/me/webhooks/1", undefined, "webhooks"],
      ["DELETE", "/api/v1/me/webhooks/1", undefined, "webhooks"],
      ["POST", "/api/v1/me/webhooks/1/test", undefined, "webhooks"],
      ["POST", "/api/v1/orgs/1/keys/1/revoke", undefined, "orgs"],
    ])("refuses a session on %s %s with a 403, and a bad one with a 401", async (method, url, body, what) => {
      const u = await h.userWithKey();
      const token = await session(u.id, 60);
      const r = await h.request(method, url, { key: token, body });
      expect(isEnvelope(r, 403, "permission_error"), r.text).toBe(true);
      expect(r.json.error.message).toContain(
        `cannot ${what === "orgs" ? "administer orgs" : "manage webhooks"}`,
      );
      expect(r.json.error.message).toContain("API key");
      const unknown = `bfs_${randomBytes(32).toString("base64url")}`;
      for (const bad of [unknown, "bfs_short", `${token}x`])
        expect(is401(await h.request(method, url, { key: bad, body }))).toBe(true);
      now += 60;
      const expired = await h.request(method, url, { key: token, body });
      expect(is401(expired)).toBe(true);
      expect(expired.json.error.message).toBe("This session has expired.");
      // The user's key still works there.
      expect((await h.request("GET", "/api/v1/me/webhooks", { key: u.key })).status).toBe(200);
    });

    it("expires at expires_at exactly: on the feed, the stream and a ticket it minted", async () => {
      const u = await h.userWithKey();
      const token = await session(u.id, 60);
      now += 30;
      const ticket = await ticketFor(token); // valid 60 s, beyond the session's end
      now += 29;
      expect((await count(token)).status).toBe(200);
      now += 1;
      for (const r of [
        await count(token),
        await h.request("GET", FEED, { key: token }),
        await h.request("GET", `${FEED}/stream`, { key: token }),
        await h.request("GET", `${FEED}/stream?ticket=${ticket}`),
        await h.request("POST", `${FEED}/stream-tickets`, { key: token }),
      ]) {
        expect(is401(r), r.text).toBe(true);
        expect(r.json.error.message).toBe("This session has expired.");
      }
    });

    it("answers a session's poll with a 304 after one statement: the session and the feed version", async () => {
      const sqls: string[] = [];
      const test = await openTestStore(backend, {
        log: (e) => void (e.level === "query" && sqls.push(e.query.sql)),
      });
      const app = await buildApp({ deps: createDeps(test.store), adminToken: ADMIN_TOKEN });
      const call = (method: string, url: string, token: string, headers: Record<string, string> = {}) =>
        app.inject({
          method: method as "GET",
          url,
          headers: { authorization: `Bearer ${token}`, ...headers },
        });
      try {
        const user = (
          await app.inject({
            method: "POST",
            url: "/admin/v1/users",
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
            payload: { email: "poll@example.com" },
          })
        ).json();
        const { token } = (await call("POST", `/admin/v1/users/${user.id}/sessions`, ADMIN_TOKEN)).json();
        const full = await call("GET", `${FEED}/unread-count`, token);
        sqls.length = 0;
        const cached = await call("GET", `${FEED}/unread-count`, token, {
          "if-none-match": String(full.headers.etag),
        });
        expect(cached.statusCode).toBe(304);
        // On Citus the session's owner is read first, so the join names its shard.
        const read = (await test.store.sharded()) ? sqls.splice(0, 1) : [];
        expect(read.map((q) => /^select "user_id" from "sessions" where "secret_hash" = /.test(q))).toEqual(
          read.map(() => true),
        );
        expect(sqls).toHaveLength(1);
        expect(sqls[0]).toMatch(/ from "sessions" as "t" inner join "feed_states" as "s"/);
        expect(sqls[0]).toMatch(/where "t"."secret_hash" = /);
      } finally {
        await app.close();
        await test.drop();
      }
    }, 120_000); // a store of its own: on a Citus cluster, making one takes a while

    it("keeps keys and the admin token working as before", async () => {
      const u = await h.userWithKey();
      await session(u.id);
      expect((await count(u.key)).status).toBe(200);
      expect(is401(await count(ADMIN_TOKEN))).toBe(true);
      expect(is401(await count(`bf_${randomBytes(32).toString("base64url")}`))).toBe(true);
      expect((await h.request("GET", "/api/v1/me/webhooks", { key: u.key })).status).toBe(200);
    });
  });

  describe("ending", () => {
    it("ends every session of the user on the next request, and closes their streams", async () => {
      const u = await h.userWithKey();
      const other = await h.userWithKey();
      const [a, b] = [await session(u.id), await session(u.id)];
      const theirs = await session(other.id);
      const unusedTicket = await ticketFor(a);
      const direct = await stream({ authorization: `Bearer ${a}` });
      const viaTicket = await stream({}, `?ticket=${await ticketFor(b)}`);
      const byKey = await stream({ authorization: `Bearer ${u.key}` });
      const otherStream = await stream({ authorization: `Bearer ${theirs}` });

      const r = await end(u.id);
      expect(r.status).toBe(204);
      expect(r.text).toBe("");
      for (const token of [a, b]) {
        const refused = await count(token);
        expect(is401(refused)).toBe(true);
        expect(refused.text).not.toContain(token);
      }
      expect(is401(await h.request("GET", `${FEED}/stream?ticket=${unusedTicket}`))).toBe(true);
      await within(Promise.all([direct.ended, viaTicket.ended]), 5000, "the session's streams end");

      // The user's key, and the other user's session and stream, are untouched.
      expect((await count(u.key)).status).toBe(200);
      expect((await count(theirs)).status).toBe(200);
      await h.pay(u.id, `after-${u.id}`);
      await h.pay(other.id, `after-${other.id}`);
      for (const c of [byKey, otherStream]) {
        await c.waitFor((e) => e.some((x) => x.event === "notification"));
        expect(await stillPending(c.ended, 200)).toBe(true);
      }
      // A new session works again; ending with none left is still a 204.
      expect((await count(await session(u.id))).status).toBe(200);
      expect((await end(other.id)).status).toBe(204);
      expect((await end(other.id)).status).toBe(204);
    });

    it("takes no body", async () => {
      const u = await h.userWithKey();
      const token = await session(u.id);
      for (const raw of ['{"all":true}', "[]", "null", '"x"']) {
        const r = await h.request("DELETE", `/admin/v1/users/${u.id}/sessions`, {
          key: ADMIN_TOKEN,
          raw,
          headers: { "content-type": "application/json" },
        });
        expect(is400(r), raw).toBe(true);
      }
      expect((await count(token)).status).toBe(200);
      const empty = await h.request("DELETE", `/admin/v1/users/${u.id}/sessions`, {
        key: ADMIN_TOKEN,
        body: {},
      });
      expect(empty.status).toBe(204);
      expect(is401(await count(token))).toBe(true);
    });
  });
});

describe.each(BACKENDS)("a session stream past its expiry on %s", (backend) => {
  let h: Harness;
  let now = T0;
  beforeAll(async () => {
    h = await startHarness(backend, { clock: () => now }, { stream: { heartbeatS: 1 } });
    await h.app.listen({ port: 0, host: "127.0.0.1" });
  });
  afterAll(() => h.close());

  it("ends at the first heartbeat after the session expires", async () => {
    const u = await h.userWithKey();
    const token = (await h.request("POST", `/admin/v1/users/${u.id}/sessions`, { key: ADMIN_TOKEN })).json
      .token;
    const port = (h.app.server.address() as { port: number }).port;
    const c = await openSse(`http://127.0.0.1:${port}${FEED}/stream`, { authorization: `Bearer ${token}` });
    try {
      await c.waitFor((e) => e.length > 0);
      await c.waitFor(() => c.comments >= 1, 5000); // a heartbeat has re-checked the live session
      expect(await stillPending(c.ended, 100)).toBe(true);
      now += 3600;
      await within(c.ended, 5000, "the expired session's stream ends");
    } finally {
      c.close();
    }
  });
});

describe("the change bus carries ended sessions", () => {
  it("splits a large change into NOTIFY-sized messages that decode back to it", () => {
    const changes = emptyChanges();
    for (let i = 1; i <= 3000; i++) {
      changes.endedSessions.add(1_000_000_000_000 + i);
      changes.revokedKeys.add(2_000_000_000_000 + i);
      changes.feeds.add(i);
    }
    changes.deliveries = true;
    const messages = encodeChanges(changes, "sender");
    expect(messages.length).toBeGreaterThan(3);
    const merged = emptyChanges();
    for (const message of messages) {
      expect(Buffer.byteLength(message)).toBeLessThan(8000);
      const part = decodeChanges(message, "receiver")!;
      for (const s of part.endedSessions) merged.endedSessions.add(s);
      for (const k of part.revokedKeys) merged.revokedKeys.add(k);
      for (const f of part.feeds) merged.feeds.add(f);
      merged.deliveries ||= part.deliveries;
    }
    expect(merged).toEqual(changes);
    expect(decodeChanges(messages[0]!, "sender")).toBeUndefined();
  });
});
