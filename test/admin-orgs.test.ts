import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, startHarness } from "./support/harness.js";

const T0 = 1_779_437_280; // 2026-05-22T08:08:00Z
const T0_ISO = "2026-05-22T08:08:00Z";

type User = Awaited<ReturnType<Harness["userWithKey"]>>;

describe.each(BACKENDS)("admin orgs and members API on %s", (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend, { clock: () => T0 });
  });
  afterAll(() => h.close());

  const admin = (method: string, url: string, body?: unknown) =>
    h.request(method, url, { key: ADMIN_TOKEN, body });
  const createOrg = (name: string, ownerId: number) =>
    admin("POST", "/admin/v1/orgs", { name, owner_user_id: ownerId });
  const add = (orgId: number | string, userId: number, role: string) =>
    admin("POST", `/admin/v1/orgs/${orgId}/members`, { user_id: userId, role });
  const setRole = (orgId: number | string, userId: number | string, role: string) =>
    admin("PATCH", `/admin/v1/orgs/${orgId}/members/${userId}`, { role });
  const remove = (orgId: number | string, userId: number | string) =>
    admin("DELETE", `/admin/v1/orgs/${orgId}/members/${userId}`);
  const orgKey = (orgId: number | string, userId: number, name = "deploy") =>
    admin("POST", `/admin/v1/orgs/${orgId}/keys`, { user_id: userId, name });
  const feed = async (key: string) =>
    (await h.request("GET", "/api/v1/me/notifications", { key })).json.items as Record<string, unknown>[];
  const unreadCount = (key: string) => h.request("GET", "/api/v1/me/notifications/unread-count", { key });
  const eventsOf = (type: string, orgId: number) =>
    h.store.db
      .selectFrom("events")
      .selectAll()
      .where("type", "=", type)
      .where("org_id", "=", orgId)
      .orderBy("id")
      .execute();
  const owners = async (orgId: number) =>
    (
      await h.store.db
        .selectFrom("memberships")
        .select("user_id")
        .where("org_id", "=", orgId)
        .where("role", "=", "owner")
        .execute()
    ).map((r) => r.user_id);

  let orgCount = 0;
  /** A new org owned by a new user. */
  async function newOrg(): Promise<{ id: number; name: string; owner: User }> {
    const owner = await h.userWithKey("owner");
    const name = `Acme ${++orgCount}`;
    const r = await createOrg(name, owner.id);
    expect(r.status, r.text).toBe(201);
    return { id: r.json.id, name, owner };
  }
  async function member(orgId: number, role: string, label = role): Promise<User> {
    const user = await h.userWithKey(label);
    const r = await add(orgId, user.id, role);
    expect(r.status, r.text).toBe(201);
    return user;
  }

  describe("POST /admin/v1/orgs", () => {
    it("creates an org with exactly {id, name, created_at} and its owner", async () => {
      const owner = await h.userWithKey("owner");
      const r = await createOrg("Initech", owner.id);
      expect(r.status).toBe(201);
      expect(Object.keys(r.json)).toEqual(["id", "name", "created_at"]);
      expect(r.json).toEqual({ id: r.json.id, name: "Initech", created_at: T0_ISO });
      expect(await owners(r.json.id)).toEqual([owner.id]);
    });

    it("answers 404 for an unknown owner and 400 for a bad body", async () => {
      expect(isEnvelope(await createOrg("Ghost", 999_999_999), 404, "not_found_error")).toBe(true);
      const owner = await h.userWithKey();
      for (const body of [
        {},
        { name: "x" },
        { owner_user_id: owner.id },
        { name: "", owner_user_id: owner.id },
        { name: "x", owner_user_id: "1" },
        { name: "x", owner_user_id: owner.id, plan: "pro" },
      ]) {
        const r = await admin("POST", "/admin/v1/orgs", body);
        expect(isEnvelope(r, 400, "invalid_request_error"), JSON.stringify(body)).toBe(true);
      }
    });
  });

  describe("members", () => {
    it("adds admins and members, answering exactly {org_id, user_id, role}", async () => {
      const org = await newOrg();
      for (const role of ["admin", "member"]) {
        const user = await h.userWithKey();
        const r = await add(org.id, user.id, role);
        expect(r.status).toBe(201);
        expect(Object.keys(r.json)).toEqual(["org_id", "user_id", "role"]);
        expect(r.json).toEqual({ org_id: org.id, user_id: user.id, role });
      }
    });

    it("refuses the owner role, other roles and unknown fields with 400", async () => {
      const org = await newOrg();
      const user = await h.userWithKey();
      for (const body of [
        { user_id: user.id, role: "owner" },
        { user_id: user.id, role: "Admin" },
        { user_id: user.id, role: "guest" },
        { user_id: user.id },
        { role: "member" },
        { user_id: user.id, role: "member", note: "hi" },
      ]) {
        const r = await admin("POST", `/admin/v1/orgs/${org.id}/members`, body);
        expect(isEnvelope(r, 400, "invalid_request_error"), JSON.stringify(body)).toBe(true);
      }
      expect((await add(org.id, user.id, "member")).status).toBe(201);
    });

    it("answers 409 for an existing member (the owner too) and 404 for an unknown org or user", async () => {
      const org = await newOrg();
      const user = await member(org.id, "member");
      expect(isEnvelope(await add(org.id, user.id, "admin"), 409, "conflict_error")).toBe(true);
      expect(isEnvelope(await add(org.id, org.owner.id, "member"), 409, "conflict_error")).toBe(true);
      expect(isEnvelope(await add(999_999_999, user.id, "member"), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await add("abc", user.id, "member"), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await add(org.id, 999_999_999, "member"), 404, "not_found_error")).toBe(true);
    });

    it("puts admin.org.member.add in the feed of every owner and admin but the new member", async () => {
      const org = await newOrg();
      const admin1 = await member(org.id, "admin", "admin1");
      const plain = await member(org.id, "member", "plain");
      const coOwner = await member(org.id, "admin", "coowner");
      expect((await setRole(org.id, coOwner.id, "owner")).status).toBe(200);
      const newcomer = await member(org.id, "admin", "newcomer");

      const row = (u: User, role: string) => ({
        type: "admin.org.member.add",
        title: `New member in ${org.name}`,
        body: `${u.email} joined ${org.name} as ${role}.`,
        link: "/org/members",
        read_at: null,
        created_at: T0_ISO,
      });
      const shown = async (u: User) =>
        (await feed(u.key)).map(({ type, title, body, link, read_at, created_at }) => ({
          type,
          title,
          body,
          link,
          read_at,
          created_at,
        }));
      // Newest first (same second, so by id).
      expect(await shown(org.owner)).toEqual([
        row(newcomer, "admin"),
        row(coOwner, "admin"),
        row(plain, "member"),
        row(admin1, "admin"),
      ]);
      expect(await shown(admin1)).toEqual([
        row(newcomer, "admin"),
        row(coOwner, "admin"),
        row(plain, "member"),
      ]);
      expect(await shown(coOwner)).toEqual([row(newcomer, "admin")]);
      expect(await shown(plain)).toEqual([]);
      expect(await shown(newcomer)).toEqual([]);
      expect((await unreadCount(org.owner.key)).json).toEqual({ count: 4 });
    });

    it("changes roles, raising admin.org.member.role_change and no feed row", async () => {
      const org = await newOrg();
      const user = await member(org.id, "member");
      const r = await setRole(org.id, user.id, "admin");
      expect(r.status).toBe(200);
      expect(Object.keys(r.json)).toEqual(["org_id", "user_id", "role"]);
      expect(r.json).toEqual({ org_id: org.id, user_id: user.id, role: "admin" });
      expect((await setRole(org.id, user.id, "owner")).json.role).toBe("owner");
      expect((await setRole(org.id, user.id, "member")).json.role).toBe("member");

      const events = await eventsOf("admin.org.member.role_change", org.id);
      expect(events.map((e) => JSON.parse(e.data))).toEqual([
        expect.objectContaining({ user_id: user.id, role: "admin", previous_role: "member" }),
        expect.objectContaining({ user_id: user.id, role: "owner", previous_role: "admin" }),
        expect.objectContaining({ user_id: user.id, role: "member", previous_role: "owner" }),
      ]);
      expect(await feed(user.key)).toEqual([]);
      // The owner saw only the add.
      expect((await feed(org.owner.key)).map((i) => i.type)).toEqual(["admin.org.member.add"]);
    });

    it("answers 404 for a non-member, an unknown org or user and 400 for a bad role", async () => {
      const org = await newOrg();
      const stranger = await h.userWithKey();
      const other = await newOrg();
      expect(isEnvelope(await setRole(org.id, stranger.id, "admin"), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await setRole(org.id, other.owner.id, "admin"), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await setRole(999_999_999, org.owner.id, "admin"), 404, "not_found_error")).toBe(
        true,
      );
      expect(isEnvelope(await setRole(org.id, 999_999_999, "admin"), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await setRole(org.id, "x", "admin"), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await setRole("1.5", org.owner.id, "admin"), 404, "not_found_error")).toBe(true);
      for (const body of [{ role: "guest" }, {}, { role: "admin", since: 1 }]) {
        const r = await admin("PATCH", `/admin/v1/orgs/${org.id}/members/${org.owner.id}`, body);
        expect(isEnvelope(r, 400, "invalid_request_error"), JSON.stringify(body)).toBe(true);
      }
    });

    it("never demotes or removes the last owner (409), but allows it once there is another", async () => {
      const org = await newOrg();
      const other = await member(org.id, "admin");
      for (const role of ["admin", "member"]) {
        expect(isEnvelope(await setRole(org.id, org.owner.id, role), 409, "conflict_error")).toBe(true);
      }
      expect(isEnvelope(await remove(org.id, org.owner.id), 409, "conflict_error")).toBe(true);
      expect(await owners(org.id)).toEqual([org.owner.id]);
      expect(await eventsOf("admin.org.member.role_change", org.id)).toHaveLength(0);

      await setRole(org.id, other.id, "owner");
      expect((await setRole(org.id, org.owner.id, "member")).json.role).toBe("member");
      expect(isEnvelope(await remove(org.id, other.id), 409, "conflict_error")).toBe(true);
      expect((await remove(org.id, org.owner.id)).status).toBe(204);
      expect(await owners(org.id)).toEqual([other.id]);
    });

    it("removes a member with 204 and no body, raising admin.org.member.remove", async () => {
      const org = await newOrg();
      const user = await member(org.id, "admin");
      const r = await remove(org.id, user.id);
      expect(r.status).toBe(204);
      expect(r.text).toBe("");
      expect(isEnvelope(await remove(org.id, user.id), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await setRole(org.id, user.id, "member"), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await remove(999_999_999, user.id), 404, "not_found_error")).toBe(true);
      const events = await eventsOf("admin.org.member.remove", org.id);
      expect(events.map((e) => JSON.parse(e.data))).toEqual([
        expect.objectContaining({ user_id: user.id, role: "admin", revoked_key_ids: [] }),
      ]);
      // Removed members can be added again.
      expect((await add(org.id, user.id, "member")).status).toBe(201);
    });

    it("revokes the removed member's keys of that org only", async () => {
      const org = await newOrg();
      const elsewhere = await newOrg();
      const user = await member(org.id, "member");
      expect((await add(elsewhere.id, user.id, "member")).status).toBe(201);
      const colleague = await member(org.id, "member", "colleague");
      // One at a time, so ids follow this order.
      const k1 = await orgKey(org.id, user.id, "ci");
      const k2 = await orgKey(org.id, user.id, "laptop");
      const kOther = await orgKey(elsewhere.id, user.id);
      const kColleague = await orgKey(org.id, colleague.id);
      for (const k of [k1, k2, kOther, kColleague]) expect(k.status, k.text).toBe(201);
      expect((await unreadCount(k1.json.key)).status).toBe(200);

      expect((await remove(org.id, user.id)).status).toBe(204);
      for (const k of [k1, k2]) {
        expect(isEnvelope(await unreadCount(k.json.key), 401, "authentication_error"), k.json.name).toBe(
          true,
        );
      }
      for (const key of [user.key, kOther.json.key, kColleague.json.key]) {
        expect((await unreadCount(key)).json).toEqual({ count: 0 });
      }
      const revoked = await h.store.db
        .selectFrom("api_keys")
        .select(["id", "revoked_at"])
        .where("user_id", "=", user.id)
        .orderBy("id")
        .execute();
      expect(revoked).toEqual([
        { id: user.keyId, revoked_at: null },
        { id: k1.json.id, revoked_at: T0 },
        { id: k2.json.id, revoked_at: T0 },
        { id: kOther.json.id, revoked_at: null },
      ]);
      const [event] = await eventsOf("admin.org.member.remove", org.id);
      expect(JSON.parse(event!.data).revoked_key_ids).toEqual([k1.json.id, k2.json.id]);
    });
  });

  describe("org keys", () => {
    it("creates an org key that authenticates as its user on /api/v1/me/*", async () => {
      const org = await newOrg();
      const user = await member(org.id, "member");
      const r = await orgKey(org.id, user.id, "deploy bot");
      expect(r.status).toBe(201);
      expect(Object.keys(r.json)).toEqual([
        "id",
        "name",
        "prefix",
        "user_id",
        "org_id",
        "created_at",
        "revoked_at",
        "key",
      ]);
      expect(r.json).toMatchObject({
        name: "deploy bot",
        prefix: r.json.key.slice(0, 12),
        user_id: user.id,
        org_id: org.id,
        created_at: T0_ISO,
        revoked_at: null,
      });
      expect(r.json.key).toMatch(/^bf_[A-Za-z0-9_-]{32,}$/);

      await h.pay(user.id, `org-key-${user.id}`);
      const viaOrgKey = await feed(r.json.key);
      expect(viaOrgKey).toHaveLength(1);
      expect(viaOrgKey).toEqual(await feed(user.key));
      expect((await unreadCount(r.json.key)).json).toEqual({ count: 1 });
      const events = await eventsOf("org.api_key.create", org.id);
      expect(events.map((e) => JSON.parse(e.data))).toEqual([
        expect.objectContaining({ key_id: r.json.id, user_id: user.id, org_id: org.id }),
      ]);
    });

    it("refuses a non-member (400), an unknown org (404) and a bad body (400)", async () => {
      const org = await newOrg();
      const stranger = await h.userWithKey();
      expect(isEnvelope(await orgKey(org.id, stranger.id), 400, "invalid_request_error")).toBe(true);
      expect(isEnvelope(await orgKey(999_999_999, org.owner.id), 404, "not_found_error")).toBe(true);
      expect(isEnvelope(await orgKey("0", org.owner.id), 404, "not_found_error")).toBe(true);
      for (const body of [
        { user_id: org.owner.id },
        { name: "x" },
        { user_id: org.owner.id, name: "x", y: 1 },
      ]) {
        const r = await admin("POST", `/admin/v1/orgs/${org.id}/keys`, body);
        expect(isEnvelope(r, 400, "invalid_request_error"), JSON.stringify(body)).toBe(true);
      }
      const keys = await h.store.db
        .selectFrom("api_keys")
        .select("id")
        .where("org_id", "=", org.id)
        .execute();
      expect(keys).toEqual([]);
    });
  });

  describe("concurrency", () => {
    const twoOwners = async () => {
      const org = await newOrg();
      const second = await member(org.id, "admin");
      await setRole(org.id, second.id, "owner");
      return { org, a: org.owner, b: second };
    };
    const statuses = (rs: { status: number }[]) => rs.map((r) => r.status).sort();

    it("lets only one of two concurrent owner demotions through", async () => {
      for (let i = 0; i < 5; i++) {
        const { org, a, b } = await twoOwners();
        const rs = await Promise.all([setRole(org.id, a.id, "member"), setRole(org.id, b.id, "admin")]);
        expect(statuses(rs)).toEqual([200, 409]);
        expect(isEnvelope(rs.find((r) => r.status === 409)!, 409, "conflict_error")).toBe(true);
        expect(await owners(org.id)).toHaveLength(1);
      }
    });

    it("lets only one of two concurrent owner removals (or a removal and a demotion) through", async () => {
      for (let i = 0; i < 3; i++) {
        const { org, a, b } = await twoOwners();
        expect(statuses(await Promise.all([remove(org.id, a.id), remove(org.id, b.id)]))).toEqual([204, 409]);
        expect(await owners(org.id)).toHaveLength(1);
        const mixed = await twoOwners();
        const rs = await Promise.all([
          remove(mixed.org.id, mixed.a.id),
          setRole(mixed.org.id, mixed.b.id, "member"),
        ]);
        expect(rs.filter((r) => r.status === 409)).toHaveLength(1);
        expect(await owners(mixed.org.id)).toHaveLength(1);
      }
    });

    it("adds a user once when two adds race", async () => {
      const org = await newOrg();
      const user = await h.userWithKey();
      const rs = await Promise.all([add(org.id, user.id, "member"), add(org.id, user.id, "admin")]);
      expect(statuses(rs)).toEqual([201, 409]);
      expect(await eventsOf("admin.org.member.add", org.id)).toHaveLength(1);
    });
  });
});
