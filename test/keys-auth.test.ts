import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, type Response, startHarness } from "./support/harness.js";

const T0 = 1_779_437_280; // 2026-05-22T08:08:00Z
const T0_ISO = "2026-05-22T08:08:00Z";
const KEY_FIELDS = ["id", "name", "prefix", "user_id", "org_id", "created_at", "revoked_at"];
const COUNT = "/api/v1/me/notifications/unread-count";

type User = Awaited<ReturnType<Harness["userWithKey"]>>;

describe.each(BACKENDS)("keys and authentication on %s", (backend) => {
  let h: Harness;
  let now = T0;
  beforeAll(async () => {
    h = await startHarness(backend, { clock: () => now });
  });
  afterAll(() => h.close());

  const admin = (method: string, url: string, body?: unknown) =>
    h.request(method, url, { key: ADMIN_TOKEN, body });
  const personalKey = (userId: number, name: string) =>
    admin("POST", `/admin/v1/users/${userId}/keys`, { name });
  const adminRevoke = (keyId: number | string) => admin("POST", `/admin/v1/keys/${keyId}/revoke`);
  const orgRevoke = (caller: string, orgId: number | string, keyId: number | string) =>
    h.request("POST", `/api/v1/orgs/${orgId}/keys/${keyId}/revoke`, { key: caller });
  const count = (key: string) => h.request("GET", COUNT, { key });
  const withAuth = (authorization: string) => h.request("GET", COUNT, { headers: { authorization } });
  const feed = async (key: string) =>
    (await h.request("GET", "/api/v1/me/notifications", { key })).json.items as Record<string, unknown>[];
  const is401 = (r: Response) => isEnvelope(r, 401, "authentication_error");

  let orgCount = 0;
  /** An org with an owner, an admin and a plain member (each with a personal key), and an org-key maker. */
  async function team() {
    const owner = await h.userWithKey("owner");
    const adm = await h.userWithKey("adm");
    const plain = await h.userWithKey("plain");
    const name = `Umbrella ${++orgCount}`;
    const org = (await admin("POST", "/admin/v1/orgs", { name, owner_user_id: owner.id })).json;
    await admin("POST", `/admin/v1/orgs/${org.id}/members`, { user_id: adm.id, role: "admin" });
    await admin("POST", `/admin/v1/orgs/${org.id}/members`, { user_id: plain.id, role: "member" });
    const orgKey = async (u: User, keyName: string) =>
      (await admin("POST", `/admin/v1/orgs/${org.id}/keys`, { user_id: u.id, name: keyName })).json;
    return { id: org.id as number, name, owner, adm, plain, orgKey };
  }

  describe("key creation", () => {
    it("returns the secret once, in the documented shape, and stores only its SHA-256", async () => {
      const user = await h.userWithKey();
      const r = await personalKey(user.id, "laptop");
      expect(r.status).toBe(201);
      expect(Object.keys(r.json)).toEqual([...KEY_FIELDS, "key"]);
      const { key } = r.json;
      expect(key).toMatch(/^bf_[A-Za-z0-9_-]{32,}$/);
      expect(r.json).toEqual({
        id: r.json.id,
        name: "laptop",
        prefix: key.slice(0, 12),
        user_id: user.id,
        org_id: null,
        created_at: T0_ISO,
        revoked_at: null,
        key,
      });
      expect((await count(key)).json).toEqual({ count: 0 });

      const row = await h.store.db
        .selectFrom("api_keys")
        .selectAll()
        .where("id", "=", r.json.id)
        .executeTakeFirst();
      expect(row!.secret_hash).toBe(createHash("sha256").update(key).digest("hex"));
      const secretPart = key.slice(12);
      for (const [column, value] of Object.entries(row!)) {
        expect(String(value), column).not.toContain(secretPart);
      }
      const events = await h.store.db
        .selectFrom("events")
        .select("data")
        .where("type", "=", "admin.api_key.create")
        .where("user_id", "=", user.id)
        .execute();
      expect(events).toHaveLength(2); // the harness's key and this one
      for (const e of events) expect(e.data).not.toContain(secretPart);
    });

    it("gives every key a distinct secret", async () => {
      const user = await h.userWithKey();
      const keys = await Promise.all(Array.from({ length: 5 }, (_, i) => personalKey(user.id, `k${i}`)));
      expect(new Set(keys.map((k) => k.json.key)).size).toBe(5);
    });

    it("answers 404 for an unknown user and 400 for a bad body", async () => {
      expect(isEnvelope(await personalKey(999_999_999, "x"), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await personalKey(Number.NaN, "x"), 404, "not_found_error")).toBe(true);
      const user = await h.userWithKey();
      for (const body of [{}, { name: "" }, { name: 1 }, { name: "x", org_id: 1 }]) {
        const r = await admin("POST", `/admin/v1/users/${user.id}/keys`, body);
        expect(isEnvelope(r, 400, "invalid_request_error"), JSON.stringify(body)).toBe(true);
      }
    });
  });

  describe("authentication", () => {
    it("accepts Bearer in any case", async () => {
      const user = await h.userWithKey();
      for (const scheme of ["Bearer", "bearer", "BEARER"]) {
        expect((await withAuth(`${scheme} ${user.key}`)).json, scheme).toEqual({ count: 0 });
      }
    });

    it("refuses every malformed, unknown or oversized credential with 401", async () => {
      const user = await h.userWithKey();
      const lookalike = `bf_${"A".repeat(43)}`;
      const refused: [string, Response][] = [
        ["missing", await h.request("GET", COUNT)],
        ["empty", await withAuth("")],
        ["Bearer alone", await withAuth("Bearer")],
        ["Bearer and a space", await withAuth("Bearer ")],
        ["Basic", await withAuth(`Basic ${Buffer.from(`${user.key}:`).toString("base64")}`)],
        ["no scheme", await withAuth(user.key)],
        ["Token scheme", await withAuth(`Token ${user.key}`)],
        ["wrong key", await withAuth("Bearer wrong")],
        ["truncated key", await withAuth(`Bearer ${user.key.slice(0, -1)}`)],
        ["extended key", await withAuth(`Bearer ${user.key}x`)],
        ["two keys", await withAuth(`Bearer ${user.key} ${user.key}`)],
        ["valid-looking unknown key", await withAuth(`Bearer ${lookalike}`)],
        ["10 KB key", await withAuth(`Bearer bf_${"a".repeat(10 * 1024)}`)],
        ["prefix only", await withAuth(`Bearer ${user.key.slice(0, 12)}`)],
      ];
      for (const [label, r] of refused) expect(is401(r), `${label}: ${r.status} ${r.text}`).toBe(true);
    });

    it("keeps the admin token and user keys apart", async () => {
      const user = await h.userWithKey();
      for (const [method, url] of [
        ["GET", "/api/v1/me/notifications"],
        ["GET", COUNT],
        ["POST", "/api/v1/me/notifications/mark-all-read"],
        ["GET", "/api/v1/me/notification-settings"],
      ] as const) {
        expect(is401(await h.request(method, url, { key: ADMIN_TOKEN })), url).toBe(true);
      }
      const asUser = (method: string, url: string, body?: unknown) =>
        h.request(method, url, { key: user.key, body });
      for (const r of [
        await asUser("POST", "/admin/v1/users", { email: "sneaky@example.com" }),
        await asUser("PATCH", `/admin/v1/users/${user.id}`, { name: "x" }),
        await asUser("POST", `/admin/v1/users/${user.id}/keys`, { name: "x" }),
        await asUser("POST", `/admin/v1/keys/${user.keyId}/revoke`),
        await asUser("POST", "/admin/v1/orgs", { name: "x", owner_user_id: user.id }),
      ]) {
        expect(is401(r), r.text).toBe(true);
      }
      expect((await count(user.key)).status).toBe(200);
    });
  });

  describe("admin revocation", () => {
    it("takes effect on the very next request and is idempotent", async () => {
      const user = await h.userWithKey();
      const ci = (await personalKey(user.id, "ci")).json;
      expect((await count(ci.key)).status).toBe(200);

      now = T0 + 60;
      const r = await adminRevoke(ci.id);
      expect(r.status).toBe(200);
      expect(Object.keys(r.json)).toEqual(KEY_FIELDS);
      expect(r.json).toEqual({
        id: ci.id,
        name: "ci",
        prefix: ci.prefix,
        user_id: user.id,
        org_id: null,
        created_at: T0_ISO,
        revoked_at: "2026-05-22T08:09:00Z",
      });
      expect(is401(await count(ci.key))).toBe(true);

      now = T0 + 120;
      const again = await adminRevoke(ci.id);
      now = T0;
      expect(again.status).toBe(200);
      expect(again.json).toEqual(r.json);
      expect((await count(user.key)).json).toEqual({ count: 1 });
      expect(await feed(user.key)).toEqual([
        {
          id: expect.any(Number),
          type: "admin.api_key.revoke",
          title: "API key revoked",
          body: `A platform administrator revoked your key "ci" (${ci.prefix}…).`,
          link: "/keys",
          read_at: null,
          created_at: "2026-05-22T08:09:00Z",
        },
      ]);
      const events = await h.store.db
        .selectFrom("events")
        .select("id")
        .where("type", "=", "admin.api_key.revoke")
        .where("user_id", "=", user.id)
        .execute();
      expect(events).toHaveLength(1);
    });

    it("revokes org keys too, telling the key's user", async () => {
      const t = await team();
      const k = await t.orgKey(t.plain, "build");
      expect((await adminRevoke(k.id)).json).toMatchObject({ org_id: t.id, revoked_at: T0_ISO });
      expect(is401(await count(k.key))).toBe(true);
      expect((await feed(t.plain.key)).map((i) => [i.title, i.body])).toEqual([
        ["API key revoked", `A platform administrator revoked your key "build" (${k.prefix}…).`],
      ]);
    });

    it.each(["999999999", "0", "abc", "-1"])("answers 404 for key id %s", async (id) => {
      expect(isEnvelope(await adminRevoke(id), 404, "not_found_error")).toBe(true);
    });
  });

  describe("org key revocation by an org owner or admin", () => {
    it("lets owners and admins revoke, telling the key's user once", async () => {
      const t = await team();
      const expected = [];
      for (const caller of [t.owner, t.adm]) {
        const k = await t.orgKey(t.plain, `by-${caller.id}`);
        const r = await orgRevoke(caller.key, t.id, k.id);
        expect(r.status).toBe(200);
        expect(Object.keys(r.json)).toEqual(KEY_FIELDS);
        expect(r.json).toEqual({
          id: k.id,
          name: k.name,
          prefix: k.prefix,
          user_id: t.plain.id,
          org_id: t.id,
          created_at: T0_ISO,
          revoked_at: T0_ISO,
        });
        expect(is401(await count(k.key))).toBe(true);
        now = T0 + 60; // a repeat later still answers the original revoked_at
        const again = await orgRevoke(caller.key, t.id, k.id);
        now = T0;
        expect(again.status).toBe(200);
        expect(again.json).toEqual(r.json);
        expected.unshift({
          type: "org.api_key.revoke",
          title: "Org API key revoked",
          body: `An admin of ${t.name} revoked your key "${k.name}" (${k.prefix}…).`,
          link: "/org/keys",
          read_at: null,
          created_at: T0_ISO,
        });
      }
      const rows = (await feed(t.plain.key)).map(({ id: _, ...rest }) => rest);
      expect(rows).toEqual(expected);
    });

    it("puts nothing in the feed of someone who revokes their own key", async () => {
      const t = await team();
      const own = await t.orgKey(t.adm, "mine");
      expect((await orgRevoke(t.adm.key, t.id, own.id)).status).toBe(200);
      expect(is401(await count(own.key))).toBe(true);
      expect((await feed(t.adm.key)).map((i) => i.type)).not.toContain("org.api_key.revoke");
      const selfRevoke = await t.orgKey(t.owner, "self");
      expect((await orgRevoke(selfRevoke.key, t.id, selfRevoke.id)).status).toBe(200);
      expect((await feed(t.owner.key)).map((i) => i.type)).not.toContain("org.api_key.revoke");
    });

    it("refuses plain members, non-members and unknown orgs with 403", async () => {
      const t = await team();
      const other = await team();
      const k = await t.orgKey(t.owner, "prod");
      const stranger = await h.userWithKey();
      for (const [label, r] of [
        ["member", await orgRevoke(t.plain.key, t.id, k.id)],
        ["member's org key", await orgRevoke((await t.orgKey(t.plain, "p")).key, t.id, k.id)],
        ["stranger", await orgRevoke(stranger.key, t.id, k.id)],
        ["owner of another org", await orgRevoke(other.owner.key, t.id, k.id)],
        ["unknown org", await orgRevoke(t.owner.key, 999_999_999, k.id)],
        ["org id 0", await orgRevoke(t.owner.key, 0, k.id)],
        ["org id abc", await orgRevoke(t.owner.key, "abc", k.id)],
        ["org id 1.5", await orgRevoke(t.owner.key, "1.5", k.id)],
      ] as const) {
        expect(isEnvelope(r, 403, "permission_error"), `${label}: ${r.status} ${r.text}`).toBe(true);
      }
      expect((await count(k.key)).status).toBe(200);
    });

    // Anyone but an owner or admin, and anyone for an org that does not exist, gets 403;
    // only then does a key that is not the org's get 404 — also when its id cannot exist.
    it("checks the caller's role before the key id, even an id that cannot exist", async () => {
      const t = await team();
      const stranger = await h.userWithKey();
      for (const [label, r] of [
        ["member", await orgRevoke(t.plain.key, t.id, "abc")],
        ["stranger", await orgRevoke(stranger.key, t.id, "0")],
        ["owner, unknown org", await orgRevoke(t.owner.key, 999_999_999, "abc")],
      ] as const) {
        expect(isEnvelope(r, 403, "permission_error"), `${label}: ${r.status} ${r.text}`).toBe(true);
      }
    });

    it("answers 404 for a key that is not an org key of that org", async () => {
      const t = await team();
      const other = await team();
      const foreign = await other.orgKey(other.owner, "theirs");
      for (const [label, keyId] of [
        ["personal key", t.plain.keyId],
        ["another org's key", foreign.id],
        ["unknown key", 999_999_999],
        ["key id abc", "abc"],
      ] as const) {
        const r = await orgRevoke(t.owner.key, t.id, keyId);
        expect(isEnvelope(r, 404, "not_found_error"), `${label}: ${r.status} ${r.text}`).toBe(true);
      }
      expect((await count(t.plain.key)).status).toBe(200);
      expect((await count(foreign.key)).status).toBe(200);
    });
  });

  describe("tenant isolation", () => {
    it("never shows or touches another user's rows", async () => {
      const a = await h.userWithKey("a");
      const b = await h.userWithKey("b");
      for (let i = 0; i < 3; i++) await h.pay(a.id, `iso-${a.id}-${i}`);
      const aRows = await feed(a.key);
      expect(aRows).toHaveLength(3);

      expect((await h.request("GET", "/api/v1/me/notifications", { key: b.key })).json).toEqual({
        items: [],
        total: 0,
        page: 1,
        page_size: 50,
      });
      expect((await count(b.key)).json).toEqual({ count: 0 });
      for (const row of aRows) {
        const r = await h.request("POST", `/api/v1/me/notifications/${row.id}/mark-read`, { key: b.key });
        expect(isEnvelope(r, 404, "not_found_error")).toBe(true);
      }
      const all = await h.request("POST", "/api/v1/me/notifications/mark-all-read", { key: b.key });
      expect(all.json).toEqual({ marked_read: 0 });
      expect((await count(a.key)).json).toEqual({ count: 3 });
      expect(await feed(a.key)).toEqual(aRows);
    });
  });
});
