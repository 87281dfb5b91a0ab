import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, corsOrigins, loadConfig } from "../src/config.js";
import { buildApp } from "../src/http/app.js";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, type Response, startHarness } from "./support/harness.js";
import { runCli } from "./support/process.js";
import { openSse } from "./support/sse.js";

const CONSOLE = "https://console.example.com";
const LOCAL = "http://localhost:5173";
const FEED = "/api/v1/me/notifications";
const EXPOSED = [
  "ETag",
  "X-Feed-Version",
  "X-Poll-Interval",
  "Retry-After",
  "X-Request-Id",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
].join(", ");

type Headers = Response["headers"];
const corsHeaders = (headers: Headers) => Object.keys(headers).filter((h) => h.startsWith("access-control-"));
const varies = (headers: Headers) => String(headers.vary ?? "").toLowerCase();

/** The headers every answer to an allowed origin on a browser path carries. */
function expectCors(headers: Headers, origin: string) {
  expect(headers["access-control-allow-origin"]).toBe(origin);
  expect(headers["access-control-expose-headers"]).toBe(EXPOSED);
  expect(varies(headers)).toContain("origin");
  expect(headers["access-control-allow-credentials"]).toBeUndefined();
}
function expectNoCors(headers: Headers) {
  expect(corsHeaders(headers)).toEqual([]);
}

describe("BELFRY_CORS_ORIGINS", () => {
  it("is empty by default and takes a comma-separated list of exact origins", () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ BELFRY_CORS_ORIGINS: "" }).corsOrigins).toEqual([]);
    expect(corsOrigins(` ${CONSOLE} ,${LOCAL},,${CONSOLE}`)).toEqual([CONSOLE, LOCAL]);
    expect(corsOrigins("http://127.0.0.1:8081,https://[::1]:9443")).toEqual([
      "http://127.0.0.1:8081",
      "https://[::1]:9443",
    ]);
  });

  it.each([
    ["*", "is not allowed"],
    ["null", "is not allowed"],
    ["console.example.com", "is not an origin"],
    ["https://", "is not an origin"],
    ["ftp://files.example.com", "must be http:// or https://"],
    ["chrome-extension://abc", "must be http:// or https://"],
    ["https://console.example.com/", 'use "https://console.example.com"'],
    ["HTTPS://Console.Example.COM", 'use "https://console.example.com"'],
    ["https://console.example.com:443", 'use "https://console.example.com"'],
    ["https://console.example.com/app", "must have no path"],
    ["https://console.example.com?x=1", "must have no path, query"],
    ["https://user:pw@console.example.com", "credentials"],
  ])("refuses %s at start, naming the variable", (origin, problem) => {
    const load = () => loadConfig({ BELFRY_CORS_ORIGINS: `${CONSOLE},${origin}` });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(`BELFRY_CORS_ORIGINS: "${origin}"`);
    expect(load).toThrow(problem);
  });

  it("stops `belfry serve` with the message and exit code 1", async () => {
    const r = await runCli(["serve"], { BELFRY_CORS_ORIGINS: "https://console.example.com/", PORT: "0" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('BELFRY_CORS_ORIGINS: "https://console.example.com/"');
    expect(r.stdout).not.toContain("listening");
  });
});

describe.each(BACKENDS)("CORS on %s", (backend) => {
  let h: Harness;
  let base: string;
  let user: Awaited<ReturnType<Harness["userWithKey"]>>;
  let token: string;
  beforeAll(async () => {
    h = await startHarness(backend, {}, { corsOrigins: [CONSOLE, LOCAL] });
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    user = await h.userWithKey();
    await h.pay(user.id, `cors-${user.id}`);
    token = (await h.request("POST", `/admin/v1/users/${user.id}/sessions`, { key: ADMIN_TOKEN })).json.token;
  });
  afterAll(() => h.close());

  const from = (origin: string, extra: Record<string, string> = {}) => ({ origin, ...extra });
  const preflight = (url: string, origin: string, method = "GET", headers = "authorization") =>
    h.request("OPTIONS", url, {
      headers: from(origin, {
        "access-control-request-method": method,
        "access-control-request-headers": headers,
      }),
    });

  it("answers a preflight from an allowed origin with 204 and the allow-lists, before authentication", async () => {
    for (const [url, method] of [
      [`${FEED}/unread-count`, "GET"],
      [`${FEED}/1/mark-read`, "POST"],
      [`${FEED}/stream`, "GET"],
      ["/api/v1/me/notification-settings", "PUT"],
      ["/bell.js", "GET"],
    ] as const) {
      for (const origin of [CONSOLE, LOCAL]) {
        const r = await preflight(
          url,
          origin,
          method,
          "authorization,content-type,if-none-match,last-event-id",
        );
        expect(r.status, url).toBe(204);
        expect(r.text).toBe("");
        expectCors(r.headers, origin);
        expect(r.headers["access-control-allow-methods"]).toBe("GET, POST, PUT, PATCH, DELETE");
        expect(r.headers["access-control-allow-headers"]).toBe(
          "Authorization, Content-Type, If-None-Match, Last-Event-ID",
        );
        expect(r.headers["access-control-max-age"]).toBe("7200");
      }
    }
  });

  it("puts the headers on answers to an allowed origin: 200, 304, 400, 401, 404 and 413", async () => {
    const ok = await h.request("GET", `${FEED}/unread-count`, { key: token, headers: from(CONSOLE) });
    expect(ok.status).toBe(200);
    expectCors(ok.headers, CONSOLE);
    const cached = await h.request("GET", `${FEED}/unread-count`, {
      key: token,
      headers: from(CONSOLE, { "if-none-match": String(ok.headers.etag) }),
    });
    expect(cached.status).toBe(304);
    expectCors(cached.headers, CONSOLE);
    const list = await h.request("GET", FEED, { key: token, headers: from(LOCAL) });
    expect(list.json.total).toBe(1);
    expectCors(list.headers, LOCAL);
    const read = await h.request("POST", `${FEED}/mark-all-read`, { key: token, headers: from(CONSOLE) });
    expect(read.json).toEqual({ marked_read: 1 });
    expectCors(read.headers, CONSOLE);

    const refusals: [Response, number][] = [
      [await h.request("GET", `${FEED}?page=0`, { key: token, headers: from(CONSOLE) }), 400],
      [await h.request("GET", FEED, { key: "bfs_nope", headers: from(CONSOLE) }), 401],
      [await h.request("GET", FEED, { headers: from(CONSOLE) }), 401],
      [await h.request("GET", "/api/v1/me/nothing-here", { key: token, headers: from(CONSOLE) }), 404],
      [
        await h.request("PUT", "/api/v1/me/notification-settings", {
          key: token,
          raw: "x".repeat(1024 * 1024 + 1),
          headers: from(CONSOLE, { "content-type": "application/json" }),
        }),
        413,
      ],
    ];
    for (const [r, status] of refusals) {
      expect(r.status).toBe(status);
      expect(r.json.error.type).toBeTypeOf("string");
      expectCors(r.headers, CONSOLE);
    }
    const script = await h.request("GET", "/bell.js", { headers: from(CONSOLE) });
    expect(script.status).toBe(200);
    expectCors(script.headers, CONSOLE);
  });

  it("puts the headers on the stream, which bypasses Fastify's reply", async () => {
    const c = await openSse(`${base}${FEED}/stream`, from(CONSOLE, { authorization: `Bearer ${token}` }));
    try {
      expect(c.status).toBe(200);
      expectCors(c.headers, CONSOLE);
      expect(c.headers["x-request-id"]).toMatch(/^req_/);
      await c.waitFor((e) => e.length > 0);
    } finally {
      c.close();
    }
    const plain = await openSse(`${base}${FEED}/stream`, { authorization: `Bearer ${token}` });
    try {
      expect(plain.status).toBe(200);
      expectNoCors(plain.headers);
    } finally {
      plain.close();
    }
  });

  it("gives other origins, and requests without one, no CORS headers; their preflights are 404s", async () => {
    for (const origin of [
      "https://evil.example.com",
      "https://console.example.com.evil.com",
      "null",
      CONSOLE.toUpperCase(),
    ]) {
      const r = await h.request("GET", `${FEED}/unread-count`, { key: token, headers: from(origin) });
      expect(r.status).toBe(200);
      expectNoCors(r.headers);
      const p = await preflight(`${FEED}/unread-count`, origin);
      expect(isEnvelope(p, 404, "not_found_error")).toBe(true);
      expectNoCors(p.headers);
    }
    const none = await h.request("GET", `${FEED}/unread-count`, { key: token });
    expectNoCors(none.headers);
    // An OPTIONS that is no preflight stays an unknown method.
    const bare = await h.request("OPTIONS", `${FEED}/unread-count`, { headers: from(CONSOLE) });
    expect(isEnvelope(bare, 404, "not_found_error")).toBe(true);
    expectNoCors(bare.headers);
  });

  it("never puts CORS headers on admin, webhook, org or health routes", async () => {
    const answers = [
      await h.request("POST", "/admin/v1/users", {
        key: ADMIN_TOKEN,
        body: { email: `cors-${backend}@example.com` },
        headers: from(CONSOLE),
      }),
      await h.request("GET", "/admin/v1/users", { key: ADMIN_TOKEN, headers: from(CONSOLE) }),
      await h.request("GET", "/api/v1/me/webhooks", { key: user.key, headers: from(CONSOLE) }),
      await h.request("GET", "/api/v1/me/webhooks/1/deliveries", { key: user.key, headers: from(CONSOLE) }),
      await h.request("POST", "/api/v1/orgs/1/keys/1/revoke", { key: user.key, headers: from(CONSOLE) }),
      await h.request("GET", "/healthz", { headers: from(CONSOLE) }),
    ];
    expect(answers.map((r) => r.status)).toEqual([201, 404, 200, 404, 403, 200]);
    for (const r of answers) expectNoCors(r.headers);
    for (const r of [answers[0]!, answers[2]!, answers[5]!])
      expect(varies(r.headers)).not.toContain("origin");
    for (const url of [
      "/admin/v1/users",
      "/api/v1/me/webhooks",
      "/api/v1/orgs/1/keys/1/revoke",
      "/healthz",
    ]) {
      const p = await preflight(url, CONSOLE, "POST");
      expect(isEnvelope(p, 404, "not_found_error"), url).toBe(true);
      expectNoCors(p.headers);
    }
  });

  it("is off entirely when no origins are configured", async () => {
    const app = await buildApp({ deps: h.deps, adminToken: ADMIN_TOKEN });
    try {
      const r = await app.inject({
        method: "GET",
        url: `${FEED}/unread-count`,
        headers: { origin: CONSOLE, authorization: `Bearer ${token}` },
      });
      expect(r.statusCode).toBe(200);
      expectNoCors(r.headers);
      const p = await app.inject({
        method: "OPTIONS",
        url: `${FEED}/unread-count`,
        headers: { origin: CONSOLE, "access-control-request-method": "GET" },
      });
      expect(p.statusCode).toBe(404);
      expectNoCors(p.headers);
    } finally {
      await app.close();
    }
  });
});
