import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResolvedAddress } from "../src/network/address-policy.js";
import type { DeliveryStatus } from "../src/store/schema.js";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, type Response, startHarness } from "./support/harness.js";
import { iso } from "./support/iso.js";
import { testWebhooks } from "./support/receiver.js";

/*
 * The webhooks API surface. No delivery worker runs here, so deliveries stay where the API (or the
 * test, writing to the store) puts them, and nothing leaves the process: host names go to the
 * resolver stub below, and no endpoint is ever called.
 */

const T0 = 1_779_437_280; // 2026-05-22T08:08:00Z
const DAY = 24 * 60 * 60;
const BASE = "/api/v1/me/webhooks";
const HOOK = "https://hooks.example.com/belfry";
const PAY = "system.payment.received";
const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;
const ENDPOINT_KEYS = ["id", "url", "event_types", "description", "enabled", "disabled_reason", "created_at"];
const STATUSES = ["pending", "succeeded", "failed", "exhausted", "held"];
const DELIVERY_KEYS = ["id", "event_id", "event_type", "status", "next_attempt_at", "created_at", "attempts"];

/** A literal of every address class the SSRF guard refuses, some in disguise. */
const REFUSED_HOSTS = [
  ..."127.0.0.1 127.1.2.3 0.0.0.0 10.1.2.3 172.16.0.1 192.168.1.1 169.254.169.254 100.64.0.1".split(" "),
  ..."224.0.0.1 255.255.255.255 2130706433 0x7f.1".split(" "), // the last two are 127.0.0.1
  ..."::1 :: fe80::1 fc00::1 fd12::1 ff02::1 ::ffff:127.0.0.1 ::ffff:10.0.0.1 64:ff9b::a00:1 2002:a00:1::1"
    .split(" ")
    .map((address) => `[${address}]`),
];

const v4 = (address: string): ResolvedAddress => ({ address, family: 4 });
const PUBLIC = "93.184.216.34";
/** The only names that resolve; any other name fails as an unknown host would. */
const DNS: Record<string, ResolvedAddress[]> = {
  "hooks.example.com": [v4(PUBLIC)],
  "public.example.com": [v4(PUBLIC), { address: "2606:2800:220:1:248:1893:25c8:1946", family: 6 }],
  "private.example.com": [v4("10.0.0.7")],
  "mixed.example.com": [v4(PUBLIC), v4("192.168.0.10")],
  "ula.example.com": [{ address: "fd00::5", family: 6 }],
};
const lookups: string[] = [];
const resolve = async (host: string): Promise<ResolvedAddress[]> => {
  lookups.push(host);
  const found = DNS[host];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
  return found;
};

type User = Awaited<ReturnType<Harness["userWithKey"]>>;

const expectEnvelope = (r: Response, status: number, type: string) =>
  expect(isEnvelope(r, status, type), `${r.status} ${r.text.slice(0, 300)}`).toBe(true);
const expect404 = (r: Response) => expectEnvelope(r, 404, "not_found_error");
const expect400 = (r: Response, words: string) => {
  expectEnvelope(r, 400, "invalid_request_error");
  expect(r.json.error.message).toContain(words);
};
const idsOf = (r: Response): number[] => r.json.items.map((item: { id: number }) => item.id);

describe.each(BACKENDS)("webhooks API on %s", (backend) => {
  let now = T0;
  /** http allowed; no network exempt from the SSRF guard. */
  let h: Harness;
  /** https only; 127.0.0.0/8 exempt. */
  let strict: Harness;
  let db: Harness["store"]["db"];
  beforeAll(async () => {
    const deps = { clock: () => now, resolve };
    h = await startHarness(backend, { ...deps, webhooks: testWebhooks({ allowNetworks: [] }) });
    const webhooks = testWebhooks({ allowHttp: false, allowNetworks: ["127.0.0.0/8"] });
    strict = await startHarness(backend, { ...deps, webhooks });
    db = h.store.db;
  });
  afterAll(async () => {
    await h.close();
    await strict.close();
  });

  const api = (method: string, path: string, key: string, body?: unknown) =>
    h.request(method, `${BASE}${path}`, { key, body });
  const post = (u: User, body: unknown, on = h) => on.request("POST", BASE, { key: u.key, body });
  const total = async (u: User) => (await api("GET", "", u.key)).json.total;
  /** Creates an endpoint; returns it as GET shows it, plus its secret. */
  async function create(u: User, body: object = {}) {
    const r = await post(u, { url: HOOK, ...body });
    expect(r.status, r.text).toBe(201);
    owners.set(r.json.id, u.id);
    return { ...r.json, disabled_reason: null };
  }

  // Whose each endpoint and delivery is: the store is read as the service reads it, user by user.
  const owners = new Map<number, number>();
  const deliveryOwners = new Map<number, number>();
  const ownerOf = (endpointId: number) => {
    const userId = owners.get(endpointId);
    if (userId === undefined) throw new Error(`endpoint ${endpointId} was not made by create()`);
    return userId;
  };
  async function deliveriesOf(endpointId: number) {
    const userId = ownerOf(endpointId);
    const deliveries = await db
      .selectFrom("webhook_deliveries")
      .select(["id", "status", "event_id"])
      .where("user_id", "=", userId)
      .where("endpoint_id", "=", endpointId)
      .orderBy("id")
      .execute();
    // Events by id on their own, as the service reads them (on Citus they are sharded apart).
    const events = deliveries.length
      ? await db
          .selectFrom("events")
          .select(["id", "type"])
          .where(
            "id",
            "in",
            deliveries.map((d) => d.event_id),
          )
          .execute()
      : [];
    const typeOf = new Map(events.map((e) => [e.id, e.type]));
    const rows = deliveries.map((d) => ({ id: d.id, status: d.status, type: typeOf.get(d.event_id) }));
    for (const r of rows) deliveryOwners.set(r.id, userId);
    return rows;
  }
  const statusesOf = async (endpointId: number) => (await deliveriesOf(endpointId)).map((d) => d.status);
  const typesOf = async (endpointId: number) => (await deliveriesOf(endpointId)).map((d) => d.type);
  const endpointRow = (id: number) =>
    db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where("user_id", "=", ownerOf(id))
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
  /** The endpoint's non-zero delivery counters, by status. */
  async function countersOf(id: number) {
    const rows = await db
      .selectFrom("webhook_delivery_counters")
      .selectAll()
      .where("user_id", "=", ownerOf(id))
      .where("endpoint_id", "=", id)
      .execute();
    return Object.fromEntries(rows.filter((r) => r.count !== 0).map((r) => [r.status, Number(r.count)]));
  }
  const bump = (userId: number, endpointId: number, status: DeliveryStatus, delta: number) =>
    db
      .insertInto("webhook_delivery_counters")
      .values({ user_id: userId, endpoint_id: endpointId, status, count: delta })
      .onConflict((oc) =>
        oc
          .columns(["user_id", "endpoint_id", "status"])
          .doUpdateSet((eb) => ({ count: eb("webhook_delivery_counters.count", "+", delta) })),
      )
      .execute();
  /** Moves a delivery to `status` in the store, as a worker would, keeping the counters exact. */
  async function setStatus(id: number, status: DeliveryStatus) {
    const userId = deliveryOwners.get(id) ?? -1;
    const before = await db
      .selectFrom("webhook_deliveries")
      .selectAll()
      .where("user_id", "=", userId)
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    const next_attempt_at_ms = status === "failed" ? (now + 60) * 1000 : null;
    await db
      .updateTable("webhook_deliveries")
      .set({ status, next_attempt_at_ms })
      .where("user_id", "=", userId)
      .where("id", "=", id)
      .execute();
    await bump(before.user_id, before.endpoint_id, before.status, -1);
    await bump(before.user_id, before.endpoint_id, status, 1);
  }
  /** Ingests one payment for `u`; returns the delivery it queued for `endpointId`. */
  async function pay(u: User, endpointId: number, tag: string): Promise<number> {
    const r = await h.pay(u.id, `${tag}-${u.id}`);
    expect(r.status, r.text).toBe(202);
    return (await deliveriesOf(endpointId)).at(-1)!.id;
  }

  it("creates an endpoint and shows its secret in that answer only", async () => {
    const u = await h.userWithKey();
    const r = await post(u, { url: HOOK, description: "billing sync" });
    expect(r.status).toBe(201);
    // The contract's fields exactly; GET and list add `disabled_reason`.
    expect(Object.keys(r.json)).toEqual([
      "id",
      "url",
      "event_types",
      "description",
      "enabled",
      "created_at",
      "secret",
    ]);
    const { secret, ...created } = r.json;
    expect(created).toEqual({
      id: expect.any(Number),
      url: HOOK,
      event_types: null,
      description: "billing sync",
      enabled: true,
      created_at: iso(now),
    });
    const endpoint = { ...created, disabled_reason: null };
    expect(secret).toMatch(SECRET);
    expect(Buffer.from(secret.slice("whsec_".length), "base64")).toHaveLength(32);
    expect((await create(u)).secret).not.toBe(secret);

    const get = await api("GET", `/${endpoint.id}`, u.key);
    expect(get.json).toEqual(endpoint);
    const list = await api("GET", "", u.key);
    expect(list.json.items[1]).toEqual(endpoint);
    const patch = await api("PATCH", `/${endpoint.id}`, u.key, { description: null });
    expect(patch.json).toEqual({ ...endpoint, description: null });
    for (const answer of [get, list, patch]) {
      expect(answer.text).not.toContain('"secret"');
      expect(answer.text).not.toContain(secret.slice(6));
    }
    expect((await create(u, { url: "https://hooks.example.com" })).url).toBe("https://hooks.example.com/");
  });

  it("validates event_types (a de-duplicated subset of the catalog), description and fields", async () => {
    const u = await h.userWithKey();
    const types = [PAY, "admin.user.update", PAY, "webhook.test"];
    const expected = [PAY, "admin.user.update", "webhook.test"];
    expect((await create(u, { event_types: types })).event_types).toEqual(expected);
    expect((await create(u, { event_types: null })).event_types).toBeNull();
    for (const event_types of [["nope"], [PAY, "system.payment"], [], PAY, [1]]) {
      expect400(await post(u, { url: HOOK, event_types }), "event_types");
    }
    expect((await create(u, { description: "d".repeat(500) })).description).toBe("d".repeat(500));
    expect((await create(u, { description: null })).description).toBeNull();
    expect400(await post(u, { url: HOOK, description: "d".repeat(501) }), "description");
    expect400(await post(u, { url: HOOK, description: 5 }), "description");
    expect400(await post(u, { url: HOOK, secret: "whsec_mine" }), "secret is not a known field");
    expect400(await post(u, { url: HOOK, enabled: false }), "enabled is not a known field");
    expect400(await post(u, { description: "no url" }), "url is required");
    expectEnvelope(await post(u, [HOOK]), 400, "invalid_request_error");
    expect(await total(u)).toBe(4);
  });

  it.each([
    ["another scheme", "ftp://hooks.example.com/x", "https"],
    ["credentials", "https://user:pw@hooks.example.com/x", "credentials"],
    ["a user name", "https://user@hooks.example.com/x", "credentials"],
    ["a fragment", "https://hooks.example.com/x#frag", "fragment"],
    ["a path alone", "/relative/path", "absolute"],
    ["no scheme", "hooks.example.com/x", "absolute"],
    ["nothing", "", "url"],
    ["2049 characters", `${HOOK}/${"a".repeat(2048 - HOOK.length)}`, "2048"],
  ])("refuses a url with %s at create and PATCH", async (_, url, words) => {
    const u = await h.userWithKey();
    expect400(await post(u, { url }), words);
    const e = await create(u);
    expect400(await api("PATCH", `/${e.id}`, u.key, { url }), words);
  });

  it("accepts a 2048-character url, and http only where allowed", async () => {
    const u = await h.userWithKey();
    const longest = `${HOOK}/${"a".repeat(2048 - HOOK.length - 1)}`;
    expect((await create(u, { url: longest })).url).toBe(longest);
    expect((await create(u, { url: "http://hooks.example.com/x" })).url).toBe("http://hooks.example.com/x");
    const s = await strict.userWithKey();
    expect400(await post(s, { url: "http://hooks.example.com/x" }, strict), "url must use https");
    expect((await post(s, { url: HOOK }, strict)).status).toBe(201);
  });

  it("refuses a url that normalises to more than 2048 characters", async () => {
    const u = await h.userWithKey();
    // 2026 characters as sent; each space becomes %20, so the url kept would be 4026 long.
    expect400(await post(u, { url: `https://hooks.example.com/${" a".repeat(1000)}` }), "2048");
    expect(await total(u)).toBe(0);
  });

  it("allows 20 endpoints per user, then 400; deleting one frees a slot", async () => {
    const u = await h.userWithKey();
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push((await create(u)).id);
    expectEnvelope(await post(u, { url: HOOK }), 400, "invalid_request_error");
    await create(await h.userWithKey());
    expect((await api("DELETE", `/${ids[0]}`, u.key)).status).toBe(204);
    await create(u);
    expectEnvelope(await post(u, { url: HOOK }), 400, "invalid_request_error");
    expect(await total(u)).toBe(20);
  });

  it("refuses every non-public literal address at create and at PATCH", async () => {
    const u = await h.userWithKey();
    const e = await create(u);
    for (const host of REFUSED_HOSTS) {
      for (const url of [`https://${host}/hook`, `http://${host}:8080/hook`]) {
        const created = await post(u, { url });
        expectEnvelope(created, 400, "invalid_request_error");
        expect(created.json.error.message, url).toMatch(/^url /);
        expect400(await api("PATCH", `/${e.id}`, u.key, { url }), "url ");
      }
    }
    expect((await api("GET", `/${e.id}`, u.key)).json.url).toBe(HOOK);
    expect(await total(u)).toBe(1);
  });

  it("resolves host names and refuses any that reach a refused address", async () => {
    const u = await h.userWithKey();
    const e = await create(u);
    for (const host of ["private.example.com", "mixed.example.com", "ula.example.com"]) {
      lookups.length = 0;
      expect400(await post(u, { url: `https://${host}/hook` }), "url resolves to a refused address");
      expect400(await api("PATCH", `/${e.id}`, u.key, { url: `https://${host}/hook` }), "url ");
      expect(lookups).toEqual([host, host]);
    }
    const publicUrl = "https://public.example.com/hook";
    expect((await create(u, { url: publicUrl })).url).toBe(publicUrl);
    // A name that does not resolve (yet) is accepted; its attempts will report `dns`.
    expect((await create(u, { url: "https://nowhere.example.com/hook" })).enabled).toBe(true);
    const patched = await api("PATCH", `/${e.id}`, u.key, { url: "https://nowhere.example.com/v2" });
    expect(patched.json.url).toBe("https://nowhere.example.com/v2");
  });

  it("accepts addresses in BELFRY_WEBHOOK_ALLOW_NETWORKS and nothing else", async () => {
    const u = await strict.userWithKey();
    for (const url of ["https://127.0.0.1/hook", "https://127.9.9.9:8443/hook"]) {
      expect((await post(u, { url }, strict)).json.url).toBe(url);
    }
    for (const url of ["https://10.0.0.1/hook", "https://[::1]/hook", "https://169.254.169.254/"]) {
      expect400(await post(u, { url }, strict), "url ");
    }
  });

  it("lists newest first with the feed's paging rules", async () => {
    const u = await h.userWithKey();
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create(u, { description: `n${i}` })).id);
    const list = (query: string) => api("GET", query, u.key);
    const all = await list("");
    expect(Object.keys(all.json)).toEqual(["items", "total", "page", "page_size"]);
    expect(all.json).toMatchObject({ total: 5, page: 1, page_size: 50 });
    expect(idsOf(all)).toEqual([...ids].reverse());
    const p2 = await list("?page=2&page_size=2");
    expect(p2.json).toMatchObject({ total: 5, page: 2, page_size: 2 });
    expect(idsOf(p2)).toEqual([ids[2], ids[1]]);
    expect((await list("?page=9&page_size=2")).json).toEqual({ items: [], total: 5, page: 9, page_size: 2 });
    expect((await list("?page_size=500")).json.page_size).toBe(200);
    expect((await list("?page=&page_size=&x=1")).json).toMatchObject({ total: 5, page: 1, page_size: 50 });
    for (const query of ["?page=0", "?page=abc", "?page_size=0", `?page=${2 ** 31}`, "?page=1&page=2"]) {
      expect400(await list(query), "page");
    }
    const theirs = (await api("GET", "", (await h.userWithKey()).key)).json;
    expect(theirs).toEqual({ items: [], total: 0, page: 1, page_size: 50 });
  });

  it("answers 404 for another user's endpoint and for malformed ids, on every route", async () => {
    const owner = await h.userWithKey();
    const stranger = await h.userWithKey();
    const { secret, ...e } = await create(owner);
    const { delivery_id } = (await api("POST", `/${e.id}/test`, owner.key)).json;
    const routes = (id: string, deliveryId = String(delivery_id)): [string, string, unknown?][] => [
      ["GET", `/${id}`],
      ["PATCH", `/${id}`, { description: "mine now" }],
      ["DELETE", `/${id}`],
      ["POST", `/${id}/rotate-secret`],
      ["POST", `/${id}/test`],
      ["GET", `/${id}/deliveries`],
      ["POST", `/${id}/deliveries/${deliveryId}/redeliver`],
      ["POST", `/${id}/recover`, { since: iso(T0) }],
    ];
    for (const [method, path, body] of routes(String(e.id))) {
      expect404(await api(method, path, stranger.key, body));
    }
    for (const id of ["0", "-1", "abc", "1.5", `0${e.id}`, "99999999999"]) {
      for (const [method, path, body] of routes(id)) expect404(await api(method, path, owner.key, body));
      expect404(await api("POST", `/${e.id}/deliveries/${id}/redeliver`, owner.key));
    }
    expect((await endpointRow(e.id)).secret).toBe(secret);
    expect((await api("GET", `/${e.id}`, owner.key)).json).toEqual(e);
    expect(await statusesOf(e.id)).toEqual(["pending"]);
  });

  it("updates, disables and re-enables, then deletes", async () => {
    const u = await h.userWithKey();
    const e = await create(u, { event_types: [PAY] });
    const changes = { url: "https://public.example.com/v2", event_types: null, description: "v2" };
    const off = await api("PATCH", `/${e.id}`, u.key, { ...changes, enabled: false });
    expect(off.status).toBe(200);
    expect(Object.keys(off.json)).toEqual(ENDPOINT_KEYS);
    expect(off.json).toEqual({
      id: e.id,
      ...changes,
      enabled: false,
      disabled_reason: "manual",
      created_at: e.created_at,
    });
    expect((await api("GET", `/${e.id}`, u.key)).json).toEqual(off.json);
    const on = await api("PATCH", `/${e.id}`, u.key, { enabled: true });
    expect(on.json).toEqual({ ...off.json, enabled: true, disabled_reason: null });
    expect((await api("PATCH", `/${e.id}`, u.key, {})).json).toEqual(on.json);
    expect400(await api("PATCH", `/${e.id}`, u.key, { enabled: "no" }), "enabled");
    expect400(await api("PATCH", `/${e.id}`, u.key, { secret: "whsec_x" }), "secret is not a known field");
    expect400(await api("PATCH", `/${e.id}`, u.key, { event_types: ["nope"] }), "event_types");

    const del = await api("DELETE", `/${e.id}`, u.key);
    expect([del.status, del.text]).toEqual([204, ""]);
    expect404(await api("GET", `/${e.id}`, u.key));
    expect404(await api("DELETE", `/${e.id}`, u.key));
    expect(await total(u)).toBe(0);
  });

  it("rotates the secret, keeping the previous one for 24 hours", async () => {
    const u = await h.userWithKey();
    const e = await create(u);
    const r = await api("POST", `/${e.id}/rotate-secret`, u.key);
    expect(r.status).toBe(200);
    expect(Object.keys(r.json)).toEqual(["secret"]);
    expect(r.json.secret).toMatch(SECRET);
    expect(r.json.secret).not.toBe(e.secret);
    const { secret } = r.json;
    const row = await endpointRow(e.id);
    expect(row).toMatchObject({ secret, previous_secret: e.secret, previous_secret_until: now + DAY });
    expect((await api("GET", `/${e.id}`, u.key)).text).not.toContain("secret");
  });

  it("sends a test event to that endpoint alone, whatever its filter", async () => {
    const u = await h.userWithKey();
    const e = await create(u, { event_types: ["admin.user.update"] });
    const sibling = await create(u);
    const r = await api("POST", `/${e.id}/test`, u.key);
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ delivery_id: expect.any(Number) });
    const id = r.json.delivery_id;
    expect(await deliveriesOf(e.id)).toEqual([{ id, status: "pending", type: "webhook.test" }]);
    expect(await deliveriesOf(sibling.id)).toEqual([]);

    const list = await api("GET", `/${e.id}/deliveries`, u.key);
    expect(Object.keys(list.json.items[0])).toEqual(DELIVERY_KEYS);
    const event_id = expect.stringMatching(/^evt_/);
    const item = { id, event_id, event_type: "webhook.test", status: "pending", attempts: [] };
    expect(list.json).toMatchObject({ total: 1, page: 1, page_size: 50 });
    expect(list.json.items).toEqual([{ ...item, next_attempt_at: iso(now), created_at: iso(now) }]);
    expect((await h.request("GET", "/api/v1/me/notifications", { key: u.key })).json.total).toBe(0);
  });

  it("queues one delivery per matching endpoint in the event's transaction, feed mutes aside", async () => {
    const u = await h.userWithKey();
    const all = await create(u);
    const payments = await create(u, { event_types: [PAY] });
    const others = await create(u, {
      event_types: ["admin.user.update", "system.balance.notify.dispatched"],
    });
    const theirs = await create(await h.userWithKey());
    const settings = { key: u.key, body: { muted_types: [PAY] } };
    expect((await h.request("PUT", "/api/v1/me/notification-settings", settings)).status).toBe(200);

    const r = await h.pay(u.id, `outbox-${u.id}`);
    expect(r.json).toEqual({ id: `outbox-${u.id}`, duplicate: false, notifications: 0 });
    // Read at once: the 202 means the deliveries are already committed.
    expect(await typesOf(all.id)).toEqual([PAY]);
    expect(await typesOf(payments.id)).toEqual([PAY]);
    expect(await typesOf(others.id)).toEqual([]);
    expect(await typesOf(theirs.id)).toEqual([]);
    expect((await h.pay(u.id, `outbox-${u.id}`)).json.duplicate).toBe(true);
    expect(await typesOf(all.id)).toEqual([PAY]);

    const rename = { key: ADMIN_TOKEN, body: { name: "Renamed" } };
    expect((await h.request("PATCH", `/admin/v1/users/${u.id}`, rename)).status).toBe(200);
    expect(await typesOf(all.id)).toEqual([PAY, "admin.user.update"]);
    expect(await typesOf(payments.id)).toEqual([PAY]);
    expect(await typesOf(others.id)).toEqual(["admin.user.update"]);
    expect(await countersOf(all.id)).toEqual({ pending: 2 });
  });

  it("delivers org events to the endpoints of the org's owners and admins", async () => {
    const admin = async (method: string, url: string, body?: unknown) => {
      const r = await h.request(method, url, { key: ADMIN_TOKEN, body });
      expect(r.status, r.text).toBeLessThan(300);
      return r.json;
    };
    const owner = await h.userWithKey("owner");
    const manager = await h.userWithKey("admin");
    const member = await h.userWithKey("member");
    const [oe, ae, me] = [await create(owner), await create(manager), await create(member)];
    const org = await admin("POST", "/admin/v1/orgs", { name: "Acme", owner_user_id: owner.id });
    await admin("POST", `/admin/v1/orgs/${org.id}/members`, { user_id: manager.id, role: "admin" });
    await admin("POST", `/admin/v1/orgs/${org.id}/members`, { user_id: member.id, role: "member" });
    await admin("POST", `/admin/v1/orgs/${org.id}/keys`, { user_id: member.id, name: "ci" });
    await admin("DELETE", `/admin/v1/orgs/${org.id}/members/${member.id}`);

    const added = "admin.org.member.add";
    const later = ["org.api_key.create", "admin.org.member.remove"];
    expect(await typesOf(oe.id)).toEqual([added, added, ...later]);
    expect(await typesOf(ae.id)).toEqual([added, ...later]); // not told of their own arrival
    expect(await typesOf(me.id)).toEqual([]);
  });

  it("holds deliveries for a disabled endpoint and cancels those of a deleted one", async () => {
    const u = await h.userWithKey();
    const off = await create(u);
    const gone = await create(u);
    await pay(u, off.id, "before");
    await api("PATCH", `/${off.id}`, u.key, { enabled: false });
    expect((await api("DELETE", `/${gone.id}`, u.key)).status).toBe(204);
    await pay(u, off.id, "after");

    expect(await statusesOf(off.id)).toEqual(["held", "held"]);
    expect(await statusesOf(gone.id)).toEqual(["cancelled"]);
    expect(await countersOf(gone.id)).toEqual({ cancelled: 1 });
    expect404(await api("GET", `/${gone.id}/deliveries`, u.key));
    const held = (await api("GET", `/${off.id}/deliveries`, u.key)).json;
    expect(held.total).toBe(2);
    for (const d of held.items) expect(d).toMatchObject({ status: "held", next_attempt_at: null });

    await api("PATCH", `/${off.id}`, u.key, { enabled: true });
    const resumed = (await api("GET", `/${off.id}/deliveries?status=pending`, u.key)).json;
    expect(resumed.total).toBe(2);
    for (const d of resumed.items) expect(d.next_attempt_at).toBe(iso(now));
    expect(await countersOf(off.id)).toEqual({ pending: 2 });
  });

  it("lists deliveries newest first, filtered by status, with totals from the counters", async () => {
    const u = await h.userWithKey();
    const e = await create(u);
    const plan: DeliveryStatus[] = ["succeeded", "failed", "exhausted", "held", "pending", "pending"];
    const ids: number[] = [];
    for (const [i, status] of plan.entries()) {
      ids.push(await pay(u, e.id, `list${i}`));
      if (status !== "pending") await setStatus(ids[i]!, status);
    }
    const failure = { number: 1, response_status: 500, response_body: "oops", latency_ms: 12 };
    const attempt = {
      ...failure,
      error_class: "http_status" as const,
      delivery_id: ids[1]!,
      user_id: u.id,
      attempted_at: now,
    };
    await db.insertInto("webhook_attempts").values(attempt).execute();
    const list = (query: string) => api("GET", `/${e.id}/deliveries${query}`, u.key);

    const all = await list("");
    expect(all.json).toMatchObject({ total: 6, page: 1, page_size: 50 });
    expect(idsOf(all)).toEqual([...ids].reverse());
    for (const status of STATUSES) {
      const expected = ids.filter((_, i) => plan[i] === status).reverse();
      const r = await list(`?status=${status}`);
      expect([r.json.total, idsOf(r)], status).toEqual([expected.length, expected]);
    }
    const [failed] = (await list("?status=failed")).json.items;
    expect(failed.next_attempt_at).toBe(iso(now + 60));
    expect(failed.attempts).toEqual([{ ...failure, error_class: "http_status", attempted_at: iso(now) }]);

    expect(idsOf(await list("?page=2&page_size=4"))).toEqual([ids[1], ids[0]]);
    expect(idsOf(await list("?status=pending&page=2&page_size=1"))).toEqual([ids[4]]);
    expect((await list("?page=9&page_size=4")).json).toEqual({ items: [], total: 6, page: 9, page_size: 4 });
    expect((await list("?status=")).json.total).toBe(6);
    for (const query of ["?status=cancelled", "?status=PENDING", "?status=pending&status=held", "?page=0"]) {
      expectEnvelope(await list(query), 400, "invalid_request_error");
    }
  });

  it("redelivers one delivery of that endpoint on a fresh schedule", async () => {
    const u = await h.userWithKey();
    const e = await create(u);
    const sibling = await create(u);
    const mine = await pay(u, e.id, "redeliver");
    const theirs = (await deliveriesOf(sibling.id))[0]!.id;
    await setStatus(mine, "exhausted");
    const r = await api("POST", `/${e.id}/deliveries/${mine}/redeliver`, u.key);
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ delivery_id: mine });
    const [d] = (await api("GET", `/${e.id}/deliveries`, u.key)).json.items;
    expect(d).toMatchObject({ id: mine, status: "pending", next_attempt_at: iso(now) });
    expect(await countersOf(e.id)).toEqual({ pending: 1 });
    expect404(await api("POST", `/${e.id}/deliveries/${theirs}/redeliver`, u.key));
    expect404(await api("POST", `/${e.id}/deliveries/999999999/redeliver`, u.key));
  });

  it("recovers failed and exhausted deliveries of events created since a time", async () => {
    const u = await h.userWithKey();
    const e = await create(u);
    const early = now;
    const old = await pay(u, e.id, "old");
    now += 100;
    const failed = await pay(u, e.id, "r1");
    const exhausted = await pay(u, e.id, "r2");
    const succeeded = await pay(u, e.id, "r3");
    await setStatus(old, "failed");
    await setStatus(failed, "failed");
    await setStatus(exhausted, "exhausted");
    await setStatus(succeeded, "succeeded");
    const recover = (body?: unknown) => api("POST", `/${e.id}/recover`, u.key, body);
    for (const body of [{ since: "yesterday" }, { since: "2026-05-22" }, { since: T0 }, {}, undefined]) {
      expectEnvelope(await recover(body), 400, "invalid_request_error");
    }
    expect400(await recover({ since: iso(now), x: 1 }), "x is not a known field");

    const r = await recover({ since: iso(early + 100) });
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ requeued: 2 });
    expect(await statusesOf(e.id)).toEqual(["failed", "pending", "pending", "succeeded"]);
    const sameInstant = iso(early - 7200).replace("Z", "-02:00");
    expect((await recover({ since: sameInstant })).json).toEqual({ requeued: 1 });
    expect(await countersOf(e.id)).toEqual({ pending: 3, succeeded: 1 });
    expect((await recover({ since: iso(early) })).json).toEqual({ requeued: 0 });
  });

  it("recovers into held on a disabled endpoint without re-enabling it", async () => {
    const u = await h.userWithKey();
    const e = await create(u);
    const [a, b] = [await pay(u, e.id, "h1"), await pay(u, e.id, "h2")];
    await api("PATCH", `/${e.id}`, u.key, { enabled: false });
    await setStatus(a, "failed");
    await setStatus(b, "exhausted");
    const r = await api("POST", `/${e.id}/recover`, u.key, { since: iso(now - DAY) });
    expect(r.json).toEqual({ requeued: 2 });
    expect(await statusesOf(e.id)).toEqual(["held", "held"]);
    expect(await countersOf(e.id)).toEqual({ held: 2 });
    const after = (await api("GET", `/${e.id}`, u.key)).json;
    expect(after).toMatchObject({ enabled: false, disabled_reason: "manual" });
  });

  it("refuses a body on the body-less routes unless it is none or {}", async () => {
    const u = await h.userWithKey();
    const e = await create(u);
    const { delivery_id } = (await api("POST", `/${e.id}/test`, u.key)).json;
    const routes: [string, string, number][] = [
      ["POST", `/${e.id}/rotate-secret`, 200],
      ["POST", `/${e.id}/test`, 202],
      ["POST", `/${e.id}/deliveries/${delivery_id}/redeliver`, 202],
      ["DELETE", `/${e.id}`, 204],
    ];
    for (const [method, path, ok] of routes) {
      for (const body of [{ x: 1 }, [], "text", 0]) {
        expectEnvelope(await api(method, path, u.key, body), 400, "invalid_request_error");
      }
      // DELETE goes last, with {}: once it succeeds the endpoint is gone.
      for (const body of method === "DELETE" ? [{}] : [undefined, {}]) {
        expect((await api(method, path, u.key, body)).status, `${method} ${path}`).toBe(ok);
      }
    }
    expect(await typesOf(e.id)).toEqual(["webhook.test", "webhook.test", "webhook.test"]);
  });
});
