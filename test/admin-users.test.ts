import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, type Response, startHarness } from "./support/harness.js";

/** The harness clock starts here (and tests may move it), so every time can be asserted exactly. */
const T0 = 1_779_437_280; // 2026-05-22T08:08:00Z
const T0_ISO = "2026-05-22T08:08:00Z";
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
/** One code point, two UTF-16 units: tells "characters" apart from string length. */
const WIDE = "𝒶";

let tag = 0;
/** An address no other test uses. */
const fresh = (local = "user") => `${local}-${++tag}-${Math.random().toString(36).slice(2, 8)}@example.com`;

describe.each(BACKENDS)("admin users API on %s", (backend) => {
  let h: Harness;
  let now = T0;
  beforeAll(async () => {
    h = await startHarness(backend, { clock: () => now });
  });
  afterAll(() => h.close());

  const create = (body: unknown) => h.request("POST", "/admin/v1/users", { key: ADMIN_TOKEN, body });
  const patch = (id: number | string, body: unknown) =>
    h.request("PATCH", `/admin/v1/users/${id}`, { key: ADMIN_TOKEN, body });
  const created = async (body: object): Promise<{ id: number; email: string; name: string | null }> => {
    const r = await create(body);
    expect(r.status, r.text).toBe(201);
    return r.json;
  };
  const updateEvents = (userId: number) =>
    h.store.db
      .selectFrom("events")
      .selectAll()
      .where("type", "=", "admin.user.update")
      .where("user_id", "=", userId)
      .execute();
  const expect400 = (r: Response, label: string) =>
    expect(isEnvelope(r, 400, "invalid_request_error"), `${label}: ${r.status} ${r.text}`).toBe(true);

  describe("POST /admin/v1/users", () => {
    it("creates a user with exactly {id, email, name, created_at}", async () => {
      const email = fresh("ada");
      const r = await create({ email, name: "Ada Lovelace" });
      expect(r.status).toBe(201);
      expect(Object.keys(r.json)).toEqual(["id", "email", "name", "created_at"]);
      expect(r.json).toEqual({ id: r.json.id, email, name: "Ada Lovelace", created_at: T0_ISO });
      expect(Number.isInteger(r.json.id)).toBe(true);
      expect(r.json.created_at).toMatch(ISO);
    });

    it("makes the name optional, and accepts null", async () => {
      const without = await created({ email: fresh() });
      expect(without.name).toBeNull();
      const withNull = await created({ email: fresh(), name: null });
      expect(withNull.name).toBeNull();
    });

    it("keeps the address as given, unicode included", async () => {
      const email = "józef@exämple.com";
      const user = await created({ email, name: "Józef 🐘" });
      expect(user).toMatchObject({ email, name: "Józef 🐘" });
    });

    it("counts the 3–254 email length in characters, not UTF-16 units", async () => {
      /** A unique address of exactly `length` characters made of `fill`, plus "<tag>@b.c". */
      const sized = (length: number, fill: string) => {
        const id = String(++tag);
        return `${fill.repeat(length - id.length - 4)}${id}@b.c`;
      };
      expect([...sized(254, WIDE)]).toHaveLength(254);
      expect((await create({ email: sized(254, WIDE) })).status).toBe(201);
      expect400(await create({ email: sized(255, WIDE) }), "255 wide characters");
      expect((await create({ email: sized(254, "x") })).status).toBe(201);
      expect400(await create({ email: sized(255, "x") }), "255 ASCII characters");
      expect((await create({ email: "a@b" })).status).toBe(201);
      expect400(await create({ email: "a@" }), "2 characters");
      expect400(await create({ email: "" }), "empty");
    });

    it("counts the 200-character name limit in characters", async () => {
      expect((await create({ email: fresh(), name: WIDE.repeat(200) })).json.name).toBe(WIDE.repeat(200));
      expect((await create({ email: fresh(), name: "n".repeat(200) })).status).toBe(201);
      expect400(await create({ email: fresh(), name: "n".repeat(201) }), "201 characters");
      expect400(await create({ email: fresh(), name: WIDE.repeat(201) }), "201 wide characters");
    });

    it.each([
      ["no @", "example.com"],
      ["two @", "a@b@example.com"],
      ["nothing before @", "@example.com"],
      ["nothing after @", "someone@"],
      ["a space", "some one@example.com"],
      ["a leading space", " someone@example.com"],
      ["a trailing space", "someone@example.com "],
      ["a tab", "some\tone@example.com"],
      ["a newline", "someone@example.com\n"],
      ["a no-break space", "some\u00a0one@example.com"],
      ["an em space", "some\u2003one@example.com"],
      ["an ideographic space", "some\u3000one@example.com"],
      ["a line separator", "some\u2028one@example.com"],
      ["a control character", "some\u0001one@example.com"],
      ["DEL", "some\u007fone@example.com"],
      ["a C1 control", "some\u0085one@example.com"],
    ])("refuses an email with %s", async (_label, email) => {
      expect400(await create({ email }), JSON.stringify(email));
    });

    it.each([
      ["no body", undefined],
      ["no email", { name: "x" }],
      ["a number email", { email: 5 }],
      ["a number name", { email: "n@example.com", name: 5 }],
      ["an unknown field", { email: "u@example.com", role: "admin" }],
      ["an id", { email: "i@example.com", id: 7 }],
      ["an array", [{ email: "a@example.com" }]],
    ])("refuses %s with 400", async (label, body) => {
      expect400(await create(body), label);
    });

    it("refuses a body that is not application/json", async () => {
      const r = await h.request("POST", "/admin/v1/users", {
        key: ADMIN_TOKEN,
        raw: "email=x@example.com",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      expect400(r, "form body");
      expect400(
        await h.request("POST", "/admin/v1/users", {
          key: ADMIN_TOKEN,
          raw: "{bad",
          headers: { "content-type": "application/json" },
        }),
        "malformed JSON",
      );
    });

    it("refuses a duplicate email case-insensitively with 409, unicode included", async () => {
      const email = fresh("Grace.Hopper");
      await created({ email });
      for (const dup of [email, email.toUpperCase(), email.toLowerCase()]) {
        const r = await create({ email: dup, name: "again" });
        expect(isEnvelope(r, 409, "conflict_error"), dup).toBe(true);
      }
      const unicode = `élodie-${++tag}@exämple.com`;
      await created({ email: unicode });
      expect(isEnvelope(await create({ email: unicode.toUpperCase() }), 409, "conflict_error")).toBe(true);
    });

    it("lets exactly one of many concurrent creates of one address win", async () => {
      const email = fresh("race");
      const spellings = [email, email.toUpperCase(), email, email.toLowerCase(), email, email, email, email];
      const results = await Promise.all(spellings.map((e) => create({ email: e })));
      const codes = results.map((r) => r.status).sort();
      expect(codes).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
      for (const r of results.filter((x) => x.status === 409)) {
        expect(isEnvelope(r, 409, "conflict_error")).toBe(true);
      }
      const rows = await h.store.db
        .selectFrom("users")
        .select("id")
        .where("email_key", "=", email.toLowerCase())
        .execute();
      expect(rows).toHaveLength(1);
    });
  });

  describe("PATCH /admin/v1/users/:user_id", () => {
    it("changes the email and the name, answering exactly the new user", async () => {
      const user = await created({ email: fresh(), name: "Old" });
      now = T0 + 3600;
      const email = fresh("new");
      const r = await patch(user.id, { email, name: "New" });
      now = T0;
      expect(r.status).toBe(200);
      expect(Object.keys(r.json)).toEqual(["id", "email", "name", "created_at"]);
      expect(r.json).toEqual({ id: user.id, email, name: "New", created_at: T0_ISO });
      expect((await patch(user.id, { name: null })).json).toEqual({
        id: user.id,
        email,
        name: null,
        created_at: T0_ISO,
      });
    });

    it("raises admin.user.update for a change and nothing when nothing changes", async () => {
      const email = fresh();
      const user = await created({ email, name: "Same" });
      for (const body of [{}, { email }, { name: "Same" }, { email, name: "Same" }]) {
        const r = await patch(user.id, body);
        expect(r.status, JSON.stringify(body)).toBe(200);
        expect(r.json).toEqual({ id: user.id, email, name: "Same", created_at: T0_ISO });
      }
      expect(await updateEvents(user.id)).toHaveLength(0);

      await patch(user.id, { name: "Renamed" });
      const events = await updateEvents(user.id);
      expect(events).toHaveLength(1);
      expect(JSON.parse(events[0]!.data)).toMatchObject({ user_id: user.id, email, name: "Renamed" });
      // A webhook-only type: it never reaches a feed.
      const rows = await h.store.db
        .selectFrom("notifications")
        .select("id")
        .where("event_id", "=", events[0]!.id)
        .execute();
      expect(rows).toHaveLength(0);

      await patch(user.id, { name: "Renamed" });
      expect(await updateEvents(user.id)).toHaveLength(1);
      await patch(user.id, { email: email.toUpperCase() });
      expect(await updateEvents(user.id)).toHaveLength(2);
    });

    it("lets a user change the case of their own address", async () => {
      const email = fresh("case");
      const user = await created({ email });
      const r = await patch(user.id, { email: email.toUpperCase() });
      expect(r.status).toBe(200);
      expect(r.json.email).toBe(email.toUpperCase());
    });

    it("refuses another user's address, in any case, with 409 and changes nothing", async () => {
      const taken = fresh("taken");
      await created({ email: taken });
      const mine = fresh("mine");
      const user = await created({ email: mine, name: "Me" });
      for (const email of [taken, taken.toUpperCase()]) {
        const r = await patch(user.id, { email, name: "Changed" });
        expect(isEnvelope(r, 409, "conflict_error"), email).toBe(true);
      }
      const row = await h.store.db
        .selectFrom("users")
        .select(["email", "name"])
        .where("id", "=", user.id)
        .executeTakeFirst();
      expect(row).toEqual({ email: mine, name: "Me" });
      expect(await updateEvents(user.id)).toHaveLength(0);
    });

    it("applies the creation rules to the new values", async () => {
      const user = await created({ email: fresh() });
      for (const body of [
        { email: "no-at-sign" },
        { email: "a@b@c" },
        { email: "sp ace@example.com" },
        { email: "tab\t@example.com" },
        { email: "nbsp\u00a0@example.com" },
        { email: "ctl\u0007@example.com" },
        { email: "a@" },
        { email: null },
        { name: "n".repeat(201) },
        { name: 3 },
        { nickname: "x" },
        { email: fresh(), extra: true },
      ]) {
        expect400(await patch(user.id, body), JSON.stringify(body));
      }
      expect(await updateEvents(user.id)).toHaveLength(0);
    });

    it.each(["999999999", "0", "-1", "abc", "1.5", "1e3", "99999999999999999999"])(
      "answers 404 for user id %s",
      async (id) => {
        const r = await patch(id, { name: "x" });
        expect(isEnvelope(r, 404, "not_found_error"), r.text).toBe(true);
      },
    );
  });

  it("refuses the admin routes without the admin token", async () => {
    const user = await h.userWithKey();
    for (const key of [undefined, user.key, "wrong"]) {
      const r = await h.request("POST", "/admin/v1/users", { key, body: { email: fresh() } });
      expect(isEnvelope(r, 401, "authentication_error"), String(key)).toBe(true);
      const p = await h.request("PATCH", `/admin/v1/users/${user.id}`, { key, body: { name: "x" } });
      expect(isEnvelope(p, 401, "authentication_error"), String(key)).toBe(true);
    }
  });
});
