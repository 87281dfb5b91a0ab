import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, type Response, startHarness } from "./support/harness.js";

const MIB = 1024 * 1024;
const INVALID = "invalid_request_error";
const JSON_TYPE = { "content-type": "application/json" };
const PAYMENT = "system.payment.received";
/** What must never reach a client: stack frames, source paths, SQL, driver names. */
const LEAK =
  /\n\s+at |node_modules|\/src\/|\.[jt]s:\d|\bselect\b.*\bfrom\b|insert into|\bupdate\s+"?\w+"?\s+set\b|sqlite|postgres|kysely|relation "|syntax error|"stack"/i;

/** `levels` objects nested inside each other: 1 → `{}`, 2 → `{"a":{}}`. */
const nested = (levels: number): object => {
  let value = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
};

/** Every route the app declares, read from the route files, as "METHOD /path". */
function declaredRoutes(): string[] {
  const dir = new URL("../src/http/routes/", import.meta.url);
  return readdirSync(dir).flatMap((file) =>
    [
      ...readFileSync(new URL(file, dir), "utf8").matchAll(/\.(get|post|put|patch|delete)\(\s*"([^"]+)"/g),
    ].map((m) => `${m[1]!.toUpperCase()} ${m[2]}`),
  );
}

describe.each(BACKENDS)("error envelope on %s", (backend) => {
  let h: Harness;
  let owner: Awaited<ReturnType<Harness["userWithKey"]>>;
  let orgId: number;
  beforeAll(async () => {
    // Webhook URLs resolve through a stub to a public address; no worker runs, so nothing is sent.
    h = await startHarness(backend, { resolve: async () => [{ address: "93.184.216.34", family: 4 }] });
    owner = await h.userWithKey("owner");
    orgId = (await admin("POST", "/admin/v1/orgs", { name: "Acme", owner_user_id: owner.id })).json.id;
  });
  afterAll(() => h.close());

  let seq = 0;
  const email = () => `e${++seq}-${backend}@example.com`;
  const admin = (method: string, url: string, body?: unknown) =>
    h.request(method, url, { key: ADMIN_TOKEN, body });
  /** Sends `raw` as-is, as JSON unless `headers` say otherwise. */
  const send = (method: string, url: string, raw: string, key?: string, headers: object = JSON_TYPE) =>
    h.request(method, url, { key, raw, headers: headers as Record<string, string> });
  const count = async (key: string) =>
    (await h.request("GET", "/api/v1/me/notifications/unread-count", { key })).json.count as number;
  /** A valid payment event, with `data` and top-level `extra` merged in. */
  const event = (userId: number, id: string, data: object, extra: object = {}) => ({
    id,
    type: PAYMENT,
    user_id: userId,
    data: { amount_cents: 1, balance_cents: 1, ...data },
    ...extra,
  });

  /** Why `r` is not a clean answer: a 5xx, or a non-2xx that is not exactly the envelope. */
  const envelopeProblem = (r: Response): string | undefined => {
    if (r.status >= 500) return `status ${r.status}: ${r.text.slice(0, 200)}`;
    if (r.status < 300) return undefined;
    const e = r.json?.error;
    const exact =
      Object.keys(r.json ?? {}).join() === "error" &&
      Object.keys(e ?? {}).join() === "type,message" &&
      typeof e.type === "string" &&
      typeof e.message === "string" &&
      e.message !== "" &&
      String(r.headers["content-type"]).startsWith("application/json");
    const leaks = LEAK.test(r.text) || r.text.includes(ADMIN_TOKEN) || r.text.includes(owner.key);
    return exact && !leaks ? undefined : `status ${r.status}, bad envelope: ${r.text.slice(0, 200)}`;
  };
  /** The error envelope, exactly, with nothing internal or secret in it. */
  const expectEnvelope = (r: Response, status: number, type: string) => {
    expect(r.status, r.text.slice(0, 300)).toBe(status);
    expect(r.json.error.type).toBe(type);
    expect(envelopeProblem(r)).toBeUndefined();
  };

  it.each([
    ["GET", "/nope"],
    ["GET", "/"],
    ["DELETE", "/api/v1/me/notifications"],
    ["GET", "/admin/v1/events"],
    ["PUT", "/api/v1/me/notifications/1/mark-read"],
    ["GET", "/api/v1/me/notifications/mark-all-read"],
    ["POST", "/healthz"],
    ["DELETE", "/admin/v1/users/1"],
    ["POST", "/api/v2/me/notifications/mark-all-read"],
    ["OPTIONS", "/api/v1/me/notifications"],
  ])("answers %s %s with a 404 before authentication, echoing no credential", async (method, url) => {
    for (const key of [undefined, "bf_not_a_real_key_0000000000000000", ADMIN_TOKEN, owner.key]) {
      expectEnvelope(await h.request(method, url, { key }), 404, "not_found_error");
      expectEnvelope(await h.request(method, url, { key, body: { x: 1 } }), 404, "not_found_error");
    }
    const echoed = await h.request(method, `${url}?token=${ADMIN_TOKEN}&key=${owner.key}`, {
      key: owner.key,
    });
    expectEnvelope(echoed, 404, "not_found_error");
  });

  const overLimit = JSON.stringify({ pad: "x".repeat(MIB) });
  it.each([
    ["POST", "/api/v1/me/notifications/mark-all-read", undefined],
    ["PUT", "/api/v1/me/notification-settings", "bf_wrong"],
    ["POST", "/admin/v1/users", "not-the-admin-token"],
    ["POST", "/admin/v1/events", undefined],
    ["POST", "/admin/v1/events", ADMIN_TOKEN],
  ])("answers %s %s with a body over 1 MiB with 413 (key %s)", async (method, url, key) => {
    expectEnvelope(await send(method, url, overLimit, key), 413, INVALID);
  });

  it("accepts a body of exactly 1 MiB", async () => {
    const id = `mib-${backend}`;
    const padded = (n: number) => JSON.stringify(event(owner.id, id, { pad: "p".repeat(n) }));
    const text = padded(MIB - Buffer.byteLength(padded(0)));
    expect(Buffer.byteLength(text)).toBe(MIB);
    const r = await send("POST", "/admin/v1/events", text, ADMIN_TOKEN);
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ id, duplicate: false, notifications: 1 });
  });

  it.each([
    "{",
    '{"email":}',
    "{'email':'a@example.com'}",
    '{"email":"a@example.com",}',
    '{"email":"a@example.com"',
    '{"a":1}{"b":2}',
    "NaN",
    "undefined",
  ])("answers malformed JSON %j with 400 on every body route", async (text) => {
    const reader = await h.userWithKey("reader");
    await h.pay(reader.id, `m-${++seq}`);
    for (const [method, url, key] of [
      ["POST", "/admin/v1/users", ADMIN_TOKEN],
      ["POST", "/admin/v1/events", ADMIN_TOKEN],
      ["PUT", "/api/v1/me/notification-settings", reader.key],
      ["POST", "/api/v1/me/notifications/mark-all-read", reader.key],
    ] as const) {
      expectEnvelope(await send(method, url, text, key), 400, INVALID);
    }
    expect(await count(reader.key)).toBe(1);
  });

  it.each([
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "multipart/form-data; boundary=x",
    "no content type",
  ])("answers a body sent as %s with 400 and acts on nothing", async (type) => {
    const headers = type === "no content type" ? {} : { "content-type": type };
    const reader = await h.userWithKey("reader");
    await h.pay(reader.id, `ct-${++seq}`);
    const address = email();
    const user = await send(
      "POST",
      "/admin/v1/users",
      JSON.stringify({ email: address }),
      ADMIN_TOKEN,
      headers,
    );
    expectEnvelope(user, 400, INVALID);
    // The same body as JSON is fine, with a charset and in any letter case.
    const json = { "content-type": "Application/JSON; charset=utf-8" };
    expect(
      (await send("POST", "/admin/v1/users", JSON.stringify({ email: address }), ADMIN_TOKEN, json)).status,
    ).toBe(201);
    const muted = JSON.stringify({ muted_types: [PAYMENT] });
    expectEnvelope(
      await send("PUT", "/api/v1/me/notification-settings", muted, reader.key, headers),
      400,
      INVALID,
    );
    const settings = await h.request("GET", "/api/v1/me/notification-settings", { key: reader.key });
    expect(settings.json).toEqual({ muted_types: [] });
    const all = await send("POST", "/api/v1/me/notifications/mark-all-read", "{}", reader.key, headers);
    expectEnvelope(all, 400, INVALID);
    expect(await count(reader.key)).toBe(1);
  });

  it("reads an empty JSON body as no body: 400 where one is required, fine where not", async () => {
    for (const url of [
      "/admin/v1/users",
      "/admin/v1/orgs",
      "/admin/v1/events",
      `/admin/v1/users/${owner.id}/keys`,
    ])
      expectEnvelope(await send("POST", url, "", ADMIN_TOKEN), 400, INVALID);
    expectEnvelope(await send("PUT", "/api/v1/me/notification-settings", "", owner.key), 400, INVALID);
    const reader = await h.userWithKey("reader");
    await h.pay(reader.id, `empty-${++seq}`);
    await h.pay(reader.id, `empty-${++seq}`);
    const [first] = (await h.request("GET", "/api/v1/me/notifications", { key: reader.key })).json.items;
    const marked = await send("POST", `/api/v1/me/notifications/${first.id}/mark-read`, "", reader.key);
    expect(marked.status).toBe(200);
    expect(marked.json).toMatchObject({ id: first.id, type: PAYMENT });
    const missing = await send("POST", "/api/v1/me/notifications/999999999/mark-read", "", reader.key);
    expectEnvelope(missing, 404, "not_found_error");
    const all = await send("POST", "/api/v1/me/notifications/mark-all-read", "", reader.key);
    expect(all.status).toBe(200);
    expect(all.json).toEqual({ marked_read: 1 });
  });

  it.each(["[]", '"x"', "null", "1", "true", '[{"email":"a@example.com"}]'])(
    "answers %s where an object is expected with 400",
    async (text) => {
      for (const [method, url] of [
        ["POST", "/admin/v1/users"],
        ["PATCH", `/admin/v1/users/${owner.id}`],
        ["POST", `/admin/v1/users/${owner.id}/keys`],
        ["POST", "/admin/v1/orgs"],
        ["POST", `/admin/v1/orgs/${orgId}/members`],
        ["PATCH", `/admin/v1/orgs/${orgId}/members/${owner.id}`],
        ["POST", `/admin/v1/orgs/${orgId}/keys`],
        ["POST", "/admin/v1/events"],
      ] as const) {
        expectEnvelope(await send(method, url, text, ADMIN_TOKEN), 400, INVALID);
      }
      expectEnvelope(await send("PUT", "/api/v1/me/notification-settings", text, owner.key), 400, INVALID);
    },
  );

  // Each template is an ingest body with "@@" where the hostile text goes, as raw JSON escapes.
  it.each([
    ["an extra data string", (u: number, id: string) => event(u, id, { note: "a@@b" })],
    ["a data key", (u: number, id: string) => event(u, id, { "k@@": 1 })],
    ["a nested data string", (u: number, id: string) => event(u, id, { deep: { list: [{ s: "@@" }] } })],
    ["the receipt", (u: number, id: string) => event(u, id, { receipt: "r@@" })],
    ["the title", (u: number, id: string) => event(u, id, {}, { title: "t@@" })],
    ["the body", (u: number, id: string) => event(u, id, {}, { body: "b@@" })],
    ["the link", (u: number, id: string) => event(u, id, {}, { link: "/a@@" })],
  ])("refuses NUL and lone surrogates in %s, storing nothing", async (_, template) => {
    const u = await h.userWithKey();
    for (const bad of ["\\u0000", "\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud800\\u0041"]) {
      const id = `nul-${++seq}`;
      const text = JSON.stringify(template(u.id, id));
      expectEnvelope(
        await send("POST", "/admin/v1/events", text.replace("@@", bad), ADMIN_TOKEN),
        400,
        INVALID,
      );
      const clean = await send("POST", "/admin/v1/events", text.replace("@@", ""), ADMIN_TOKEN);
      expect(clean.json, bad).toEqual({ id, duplicate: false, notifications: 1 });
    }
    expect(await count(u.key)).toBe(5);
  });

  it("refuses NUL and lone surrogates on the other routes, storing nothing", async () => {
    const u = await h.userWithKey("keeper");
    for (const bad of ["\\u0000", "\\ud800"]) {
      const address = email();
      const user = `{"email":"${address}","name":"n${bad}"}`;
      expectEnvelope(await send("POST", "/admin/v1/users", user, ADMIN_TOKEN), 400, INVALID);
      expect((await admin("POST", "/admin/v1/users", { email: address })).status).toBe(201);
      for (const [method, url, text, key] of [
        ["PATCH", `/admin/v1/users/${u.id}`, `{"name":"x${bad}"}`, ADMIN_TOKEN],
        ["POST", `/admin/v1/users/${u.id}/keys`, `{"name":"k${bad}"}`, ADMIN_TOKEN],
        ["POST", "/admin/v1/orgs", `{"name":"o${bad}","owner_user_id":${u.id}}`, ADMIN_TOKEN],
        ["PUT", "/api/v1/me/notification-settings", `{"muted_types":["${PAYMENT}${bad}"]}`, u.key],
      ] as const) {
        expectEnvelope(await send(method, url, text, key), 400, INVALID);
      }
      expect((await admin("PATCH", `/admin/v1/users/${u.id}`, {})).json).toMatchObject({ name: "keeper" });
    }
  });

  it("refuses a body that is not valid UTF-8 instead of storing U+FFFD", async () => {
    const address = email();
    const bytes = Buffer.concat([
      Buffer.from(`{"email":"${address}","name":"a`),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    const r = await h.request("POST", "/admin/v1/users", {
      key: ADMIN_TOKEN,
      raw: bytes,
      headers: JSON_TYPE as Record<string, string>,
    });
    expectEnvelope(r, 400, INVALID);
    expect((await admin("POST", "/admin/v1/users", { email: address })).status).toBe(201);
  });

  it("keeps a valid surrogate pair intact", async () => {
    const u = await h.userWithKey();
    const text = JSON.stringify(event(u.id, `pair-${++seq}`, { receipt: "@@" }));
    expect(
      (await send("POST", "/admin/v1/events", text.replace("@@", "\\ud83d\\ude00"), ADMIN_TOKEN)).status,
    ).toBe(202);
    const { items } = (await h.request("GET", "/api/v1/me/notifications", { key: u.key })).json;
    expect(items[0].body).toBe("Stripe receipt #😀. Your balance is now $0.01.");
  });

  it("refuses __proto__ keys anywhere, storing nothing", async () => {
    const u = await h.userWithKey();
    const address = email();
    const user = `{"__proto__":{"admin":true},"email":"${address}"}`;
    expectEnvelope(await send("POST", "/admin/v1/users", user, ADMIN_TOKEN), 400, INVALID);
    expect((await admin("POST", "/admin/v1/users", { email: address })).status).toBe(201);
    const settings = `{"muted_types":[],"__proto__":null}`;
    expectEnvelope(await send("PUT", "/api/v1/me/notification-settings", settings, u.key), 400, INVALID);
    for (const data of ['"__proto__":{"amount_cents":5}', '"x":{"list":[{"__proto__":{}}]}']) {
      const id = `proto-${++seq}`;
      const text = JSON.stringify(event(u.id, id, { x: "@@" })).replace('"x":"@@"', data);
      expectEnvelope(await send("POST", "/admin/v1/events", text, ADMIN_TOKEN), 400, INVALID);
      expect((await h.pay(u.id, id, { amount_cents: 1, balance_cents: 1 })).json.duplicate).toBe(false);
    }
  });

  it("accepts JSON nested 32 deep and refuses anything deeper", async () => {
    const u = await h.userWithKey();
    // The body is level 1 and `data` level 2, so `x` adds the remaining 30 (then 31).
    const deepest = event(u.id, `deep-${++seq}`, { x: nested(30) });
    expect((await admin("POST", "/admin/v1/events", deepest)).status).toBe(202);
    const tooDeep = event(u.id, `deep-${++seq}`, { x: nested(31) });
    expectEnvelope(await admin("POST", "/admin/v1/events", tooDeep), 400, INVALID);
    expect((await h.pay(u.id, tooDeep.id)).json.duplicate).toBe(false);
    for (const depth of [40, 100_000]) {
      const text = "[".repeat(depth) + "]".repeat(depth);
      expectEnvelope(await send("POST", "/admin/v1/users", text, ADMIN_TOKEN), 400, INVALID);
    }
  });

  it.each([
    ["GET", "/api/v1/me/notifications?x=%zz", 200],
    ["GET", "/api/v1/me/notifications?%zz=1", 200],
    ["GET", "/api/v1/me/notifications?type=%zz", 400],
    ["GET", "/api/v1/me/notifications?page=%", 400],
    ["GET", "/%zz", undefined],
    ["GET", "/%", undefined],
    ["GET", "/api/v1/me/notifications%00", undefined],
    ["POST", "/api/v1/me/notifications/%zz/mark-read", undefined],
    ["POST", "/admin/v1/users/%E0%A4%A/keys", undefined],
    ["GET", "/api/v1/me/notifications/unread-count?%E0%A4%A", 200],
  ])("never answers a malformed URL %s %s with a 500", async (method, url, withKey) => {
    for (const key of [undefined, owner.key, ADMIN_TOKEN]) {
      const r = await h.request(method, url, { key });
      expect(envelopeProblem(r), String(key)).toBeUndefined();
      if (key === owner.key && withKey !== undefined) expect(r.status).toBe(withKey);
    }
  });

  it("renders 400, 401, 403, 404 and 409 alike, echoing no credential", async () => {
    const outsider = await h.userWithKey("outsider");
    const unauthenticated = (r: Response) => expectEnvelope(r, 401, "authentication_error");
    const org = { name: "x", owner_user_id: outsider.id };
    unauthenticated(await h.request("POST", "/admin/v1/orgs", { key: owner.key, body: org }));
    unauthenticated(await h.request("GET", "/api/v1/me/notifications", { key: ADMIN_TOKEN }));
    for (const authorization of [
      "",
      "Bearer",
      "Basic dXNlcjpwYXNz",
      `Bearer ${"a".repeat(5000)}`,
      `Bearer ${owner.key}x`,
      `Bearer ${ADMIN_TOKEN}x`,
      `Bearer ${owner.key} ${ADMIN_TOKEN}`,
    ]) {
      const headers = { authorization };
      unauthenticated(await h.request("GET", "/api/v1/me/notifications/unread-count", { headers }));
      unauthenticated(await h.request("POST", "/admin/v1/orgs", { headers, body: org }));
    }
    const spare = (await admin("POST", `/admin/v1/users/${outsider.id}/keys`, { name: "s" })).json;
    await admin("POST", `/admin/v1/keys/${spare.id}/revoke`);
    const revoked = await h.request("GET", "/api/v1/me/notifications", { key: spare.key });
    unauthenticated(revoked);
    expect(revoked.text).not.toContain(spare.key);
    const revoke = await h.request("POST", `/api/v1/orgs/${orgId}/keys/1/revoke`, { key: outsider.key });
    expectEnvelope(revoke, 403, "permission_error");
    expectEnvelope(await admin("POST", "/admin/v1/users", { email: outsider.email }), 409, "conflict_error");
    expectEnvelope(await admin("POST", "/admin/v1/users", { email: "x", secret: ADMIN_TOKEN }), 400, INVALID);
  });

  describe("hostile input sweep", () => {
    const HUGE = "<1e400>";
    const LONG = "x".repeat(100_000);
    const SHAPES = '{} [] "x" 1 null true 1e400 -1e400'.split(" ");
    SHAPES.push(
      JSON.stringify(LONG),
      JSON.stringify({ x: LONG }),
      JSON.stringify(nested(40)),
      "[".repeat(5000) + "]".repeat(5000),
    );
    const NUMBERS = [0, -1, 1.5, 2 ** 53, 2 ** 63, -(2 ** 63), HUGE];
    const VALUES: unknown[] = [...NUMBERS, null, true, "", "x", LONG, [], [1, "a"], {}, { a: 1 }, nested(40)];
    const IDS = ["0", "-1", "1.5", "abc", String(2n ** 63n), "a".repeat(5000), "%00"];
    const QUERIES =
      "?page=1e400 ?page=%00 ?type=%00 ?unread[]=1 ?page=-0 ?page=0x10 ?unread=1&unread=0 ?&&=&="
        .split(" ")
        .concat(`?page_size=${"9".repeat(20)}`, `?a=${"b".repeat(5000)}`, `?type=${"t".repeat(5000)}`);
    const data = { amount_cents: 1, balance_cents: 1, receipt: "r" };
    /** Every route in src/http/routes, with a body it would otherwise accept. */
    const ROUTES: [string, string, Record<string, unknown>?][] = [
      ["GET", "/healthz"],
      ["GET", "/readyz"],
      ["GET", "/bell.js"],
      ["GET", "/metrics"],
      ["GET", "/api/v1/me/notifications"],
      ["GET", "/api/v1/me/notifications/unread-count"],
      ["POST", "/api/v1/me/notifications/:id/mark-read"],
      ["POST", "/api/v1/me/notifications/mark-all-read"],
      ["GET", "/api/v1/me/notification-settings"],
      ["PUT", "/api/v1/me/notification-settings", { muted_types: [] }],
      ["POST", "/api/v1/orgs/:org_id/keys/:key_id/revoke"],
      ["POST", "/admin/v1/users", { email: "sweep@example.com", name: "Sweep" }],
      ["PATCH", "/admin/v1/users/:user_id", { email: "sweep-2@example.com", name: "Sweep" }],
      ["POST", "/admin/v1/users/:user_id/keys", { name: "k" }],
      ["POST", "/admin/v1/users/:user_id/sessions", { ttl_seconds: 3600 }],
      ["DELETE", "/admin/v1/users/:user_id/sessions"],
      ["POST", "/admin/v1/keys/:key_id/revoke"],
      ["POST", "/admin/v1/orgs", { name: "Org", owner_user_id: 1 }],
      ["POST", "/admin/v1/orgs/:org_id/members", { user_id: 1, role: "member" }],
      ["PATCH", "/admin/v1/orgs/:org_id/members/:user_id", { role: "admin" }],
      ["DELETE", "/admin/v1/orgs/:org_id/members/:user_id"],
      ["POST", "/admin/v1/orgs/:org_id/keys", { user_id: 1, name: "k" }],
      ["POST", "/admin/v1/events", { id: "sweep", type: PAYMENT, user_id: 1, data }],
      ["POST", "/admin/v1/events/batch", { events: [{ id: "sweep-b", type: PAYMENT, user_id: 1, data }] }],
      ["POST", "/api/v1/me/webhooks", { url: "https://hooks.example.com/x", description: "d" }],
      ["GET", "/api/v1/me/webhooks"],
      ["GET", "/api/v1/me/webhooks/:id"],
      ["PATCH", "/api/v1/me/webhooks/:id", { url: "https://hooks.example.com/y", enabled: true }],
      ["DELETE", "/api/v1/me/webhooks/:id"],
      ["POST", "/api/v1/me/webhooks/:id/rotate-secret"],
      ["POST", "/api/v1/me/webhooks/:id/test"],
      ["GET", "/api/v1/me/webhooks/:id/deliveries"],
      ["POST", "/api/v1/me/webhooks/:id/deliveries/:delivery_id/redeliver"],
      ["POST", "/api/v1/me/webhooks/:id/recover", { since: "2026-01-01T00:00:00Z" }],
      ["POST", "/api/v1/me/notifications/stream-tickets"],
    ];
    /** Streams answer 200 and stay open; test/stream.test.ts covers their refusals. */
    const STREAMS = ["GET /api/v1/me/notifications/stream"];
    /** Real ids for the path parameters, so a hostile body is what the route trips on. */
    let ids: Record<string, number>;
    beforeAll(async () => {
      const member = await h.userWithKey("member");
      await admin("POST", `/admin/v1/orgs/${orgId}/members`, { user_id: member.id, role: "member" });
      const orgKey = await admin("POST", `/admin/v1/orgs/${orgId}/keys`, { user_id: member.id, name: "o" });
      await h.pay(owner.id, `sweep-${backend}`);
      const [row] = (await h.request("GET", "/api/v1/me/notifications", { key: owner.key })).json.items;
      const endpoint = await h.request("POST", "/api/v1/me/webhooks", {
        key: owner.key,
        body: { url: "https://hooks.example.com/x" },
      });
      const test = await h.request("POST", `/api/v1/me/webhooks/${endpoint.json.id}/test`, {
        key: owner.key,
      });
      ids = {
        id: row.id,
        org_id: orgId,
        user_id: member.id,
        key_id: member.keyId,
        org_key: orgKey.json.id,
        endpoint: endpoint.json.id,
        delivery_id: test.json.delivery_id,
      };
    });
    const url = (path: string, params: Record<string, string> = {}) =>
      path.replace(/:(\w+)/g, (_, name: string) => {
        const id =
          name === "key_id" && path.startsWith("/api")
            ? ids.org_key
            : name === "id" && path.includes("/webhooks")
              ? ids.endpoint
              : ids[name];
        return params[name] ?? String(id);
      });
    const keyFor = (path: string) =>
      path.startsWith("/admin") ? ADMIN_TOKEN : path.startsWith("/api") ? owner.key : undefined;
    /** Sends one request; returns it with a line describing what is wrong with the answer, if anything. */
    const probe = async (method: string, target: string, text: string) => {
      const r = await send(method, target, text, keyFor(target));
      const problem = envelopeProblem(r);
      return { r, problem: problem && `${method} ${target.slice(0, 80)} ${text.slice(0, 60)} → ${problem}` };
    };

    it("covers every declared route", () => {
      expect([...ROUTES.map(([m, p]) => `${m} ${p}`), ...STREAMS].sort()).toEqual(declaredRoutes().sort());
    });

    it("never answers a hostile body with a 500", async () => {
      const problems: (string | undefined)[] = [];
      for (const [method, path, base = {}] of ROUTES) {
        for (const text of SHAPES) problems.push((await probe(method, url(path), text)).problem);
        const fields = Object.keys(base).map((f) => [f]);
        if (path === "/admin/v1/events") fields.push(...Object.keys(data).map((f) => ["data", f]));
        for (const [outer, inner] of fields as [string, string?][]) {
          for (const value of VALUES) {
            const body = structuredClone(base);
            if (inner === undefined) body[outer] = value;
            else (body[outer] as Record<string, unknown>)[inner] = value;
            const text = JSON.stringify(body).replace(`"${HUGE}"`, "1e400");
            problems.push((await probe(method, url(path), text)).problem);
          }
        }
      }
      expect(problems.filter(Boolean)).toEqual([]);
    });

    it("never answers a hostile path id with a 500, and refuses it as the API reference says", async () => {
      const problems: (string | undefined)[] = [];
      for (const [method, path, base = {}] of ROUTES) {
        for (const name of path.match(/(?<=:)\w+/g) ?? []) {
          for (const id of IDS) {
            const { r, problem } = await probe(method, url(path, { [name]: id }), JSON.stringify(base));
            problems.push(problem);
            // A mark-read id that is not a positive integer → 404; an org that does
            // not exist → 403; a key that is not an org key of that org → 404.
            const expected = path.endsWith("mark-read")
              ? 404
              : path.startsWith("/api/v1/orgs")
                ? name === "org_id"
                  ? 403
                  : 404
                : undefined;
            if (expected !== undefined && r.status !== expected)
              problems.push(
                `${method} ${path} with ${name}=${id.slice(0, 20)}…: ${r.status}, the API reference says ${expected}`,
              );
          }
        }
      }
      expect(problems.filter(Boolean)).toEqual([]);
    });

    it("never answers a hostile query string with a 500", async () => {
      const problems: (string | undefined)[] = [];
      for (const [method, path, base = {}] of ROUTES)
        for (const query of QUERIES)
          problems.push((await probe(method, url(path) + query, JSON.stringify(base))).problem);
      expect(problems.filter(Boolean)).toEqual([]);
    });
  });
});
