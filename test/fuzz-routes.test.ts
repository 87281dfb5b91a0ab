import { createHash } from "node:crypto";
import { Agent } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, startHarness } from "./support/harness.js";
import {
  AUTH_KINDS,
  authorization,
  type BodyPlan,
  bodyArb,
  headersArb,
  queryArb,
  resolveBody,
  segmentArb,
  spell,
  type Text,
} from "./support/hostile-input.js";
import { proofSeed, reportProof } from "./support/proof-seed.js";
import { type RawAnswer, type RawRequest, sendRaw } from "./support/raw-http.js";
import { type RegisteredRoute, registeredRoutes } from "./support/registered-routes.js";

/**
 * Fuzzes every route the app registers (read from the app itself, so new routes are covered
 * without touching this file) with generated hostile path parameters, query strings, headers and
 * bodies, sent over a real socket with valid credentials and without. Every answer must be below
 * 500; every non-2xx answer other than 304 must be exactly the error envelope, saying nothing of
 * stack traces or SQL; and the app must still answer afterwards. A 200 event stream is cut off as
 * soon as its headers arrive.
 */

const SEED = proofSeed(2_026_0522);
const RUNS_PER_ROUTE = 60;
const RUNS_OTHER_METHODS = 10;
const ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const ERROR_TYPES = [
  "invalid_request_error",
  "authentication_error",
  "permission_error",
  "not_found_error",
  "conflict_error",
  "rate_limit_error",
  "unavailable_error",
];
/** What a leaked stack trace or SQL statement looks like. */
const LEAKS = [
  /\bat .+:\d+:\d+/,
  /node_modules|\/src\/|\.[jt]s:\d/,
  /\b(select|insert|update|delete)\b[\s\S]*\b(from|into|set|where)\b/i,
  /SQLITE_|syntax error|violates|constraint|relation "|duplicate key|ECONNREFUSED|TypeError|ReferenceError/i,
];

interface Plan {
  params: Text[];
  query: Text[];
  auth: (typeof AUTH_KINDS)[number];
  headers: [string, Text][];
  body: BodyPlan | undefined;
}

/** A per-route seed from the suite's seed, so adding a route leaves the others' inputs alone. */
const seedFor = (what: string) => SEED ^ createHash("sha256").update(what).digest().readInt32BE(0);

const paramNames = (path: string) => path.split("/").filter((s) => s.startsWith(":") || s === "*");

describe.each(BACKENDS)("hostile input on every route on %s", (backend) => {
  let h: Harness;
  let base: { host: string; port: number };
  const agent = new Agent({ keepAlive: true });
  let userKey = "";
  let realIds: string[] = [];
  let userIds: number[] = [];
  const stats = {
    requests: 0,
    streams: 0,
    closed: 0,
    unreadableHead: 0,
    statuses: new Map<number, number>(),
  };

  beforeAll(async () => {
    // Webhook URLs resolve to a public address without DNS; no delivery worker runs here.
    h = await startHarness(backend, { resolve: async () => [{ address: "93.184.216.34", family: 4 }] });
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    const address = h.app.server.address();
    if (typeof address !== "object" || !address) throw new Error("not listening");
    base = { host: "127.0.0.1", port: address.port };
    // Real resources, so some generated ids name something and requests get past the 404s.
    const u = await h.userWithKey("fuzz");
    const v = await h.userWithKey("fuzz-member");
    userKey = u.key;
    const admin = (path: string, body: object) => h.request("POST", path, { key: ADMIN_TOKEN, body });
    const org = (await admin("/admin/v1/orgs", { name: "Fuzz", owner_user_id: u.id })).json;
    await admin(`/admin/v1/orgs/${org.id}/members`, { user_id: v.id, role: "member" });
    const orgKey = (await admin(`/admin/v1/orgs/${org.id}/keys`, { user_id: v.id, name: "ci" })).json;
    const endpoint = await h.request("POST", "/api/v1/me/webhooks", {
      key: u.key,
      body: { url: "https://hooks.example.com/fuzz" },
    });
    await h.pay(u.id, "fuzz-1");
    const row = (await h.request("GET", "/api/v1/me/notifications", { key: u.key })).json.items[0];
    userIds = [u.id, v.id];
    realIds = [u.id, v.id, org.id, orgKey.id, endpoint.json.id, row.id, 1].map(String);
  });
  afterAll(async () => {
    agent.destroy();
    await h.close();
  });

  /** A fresh key for the fuzzed user when a generated admin request revoked the current one. */
  async function keepKeyValid(): Promise<void> {
    const r = await h.request("GET", "/api/v1/me/notifications/unread-count", { key: userKey });
    if (r.status === 401) userKey = (await h.userWithKey("fuzz")).key;
  }

  function build(method: string, route: RegisteredRoute, plan: Plan): RawRequest {
    let i = 0;
    const path = route.path
      .split("/")
      .map((s) => (s.startsWith(":") || s === "*" ? spell(plan.params[i++] ?? "") : s))
      .join("/");
    const isAdmin = route.path.startsWith("/admin/");
    const auth = authorization(plan.auth, isAdmin ? ADMIN_TOKEN : userKey, isAdmin ? userKey : ADMIN_TOKEN);
    const headers: Record<string, string> = Object.fromEntries(plan.headers.map(([k, v]) => [k, spell(v)]));
    if (auth !== undefined) headers.authorization = auth;
    // A body is sent as JSON unless the plan names another content type (or none: "").
    if (plan.body !== undefined) headers["content-type"] ??= "application/json";
    return { method, path: path + plan.query.map(spell).join(""), headers, body: resolveBody(plan.body) };
  }

  async function send(req: RawRequest): Promise<RawAnswer> {
    stats.requests++;
    const answer = await sendRaw(base, agent, req);
    if (answer.kind === "answer")
      stats.statuses.set(answer.status, (stats.statuses.get(answer.status) ?? 0) + 1);
    if (answer.kind === "stream") stats.streams++;
    return answer;
  }

  function check(answer: RawAnswer, req: RawRequest): void {
    if (answer.kind === "stream") return;
    if (answer.kind === "failed") {
      // Refused before the body was read (too large, unauthenticated), a request gets its answer
      // and a closed connection, which a client still writing a large body may see first. And a
      // HEAD that Node's HTTP parser refuses (a bad URL, oversized headers) gets the envelope when
      // Belfry cannot tell it was a HEAD (see docs/decisions.md), which a HEAD client cannot read.
      // Anything else without an answer is a failure.
      const closed = (req.body?.length ?? 0) > 64 * 1024 && ["ECONNRESET", "EPIPE"].includes(answer.code);
      const unreadableHead = req.method === "HEAD" && answer.code.startsWith("HPE_");
      expect(closed || unreadableHead, `no answer: ${answer.code}`).toBe(true);
      if (closed) stats.closed++;
      else stats.unreadableHead++;
      return;
    }
    expect(answer.status, answer.body).toBeLessThan(500);
    if (answer.status === 304) expect(answer.body).toBe("");
    if ((answer.status >= 200 && answer.status < 300) || answer.status === 304 || req.method === "HEAD")
      return;
    // The API reference's pages redirect to each other, only ever within this server.
    if (answer.status === 301 || answer.status === 302) {
      expect(req.path.startsWith("/docs") || req.path === "/" || req.path.startsWith("/?"), req.path).toBe(
        true,
      );
      expect(String(answer.headers.location)).toMatch(/^\/(?!\/)/);
      return;
    }
    expect(answer.headers["content-type"]).toMatch(/^application\/json/);
    const json = JSON.parse(answer.body);
    expect(Object.keys(json)).toEqual(["error"]);
    expect(Object.keys(json.error).sort()).toEqual(["message", "type"]);
    expect(ERROR_TYPES).toContain(json.error.type);
    expect(typeof json.error.message).toBe("string");
    for (const leak of LEAKS) expect(json.error.message).not.toMatch(leak);
  }

  // Unbiased: fast-check's bias would favour the first of each list of hostile values.
  const planArb = (route: RegisteredRoute): fc.Arbitrary<Plan> =>
    fc.noBias(
      fc.record({
        params: fc.tuple(...paramNames(route.path).map(() => segmentArb(realIds))),
        query: queryArb,
        auth: fc.constantFrom(...AUTH_KINDS),
        headers: headersArb,
        body: bodyArb(userIds, route.path),
      }),
    );

  const fuzz = (methods: fc.Arbitrary<string>, route: RegisteredRoute, what: string, numRuns: number) =>
    fc.assert(
      fc.asyncProperty(methods, planArb(route), async (method, plan) => {
        const req = build(method, route, plan);
        const answer = await send(req);
        // Only a successful admin request can have revoked the fuzzed user's key.
        if (answer.kind === "answer" && answer.status < 300 && route.path.startsWith("/admin/"))
          await keepKeyValid();
        check(answer, req);
      }),
      { seed: seedFor(what), numRuns },
    );

  it("answers every generated request below 500, with the envelope, and stays up", async () => {
    const routes = registeredRoutes(h.app);
    const listed = routes.flatMap((r) => r.methods.map((m) => `${m} ${r.path}`));
    for (const known of ["GET /api/v1/me/notifications", "POST /admin/v1/events/batch", "GET /healthz"])
      expect(listed).toContain(known);

    for (const route of routes) {
      for (const method of route.methods) {
        await fuzz(fc.constant(method), route, `${method} ${route.path}`, RUNS_PER_ROUTE);
      }
      const others = ALL_METHODS.filter((m) => !route.methods.includes(m));
      if (others.length > 0)
        await fuzz(fc.constantFrom(...others), route, `other methods of ${route.path}`, RUNS_OTHER_METHODS);
    }

    const health = await sendRaw(base, agent, {
      method: "GET",
      path: "/healthz",
      headers: {},
      body: undefined,
    });
    expect(health).toMatchObject({ kind: "answer", status: 200, body: '{"status":"ok"}' });
    const ready = await sendRaw(base, agent, {
      method: "GET",
      path: "/readyz",
      headers: {},
      body: undefined,
    });
    expect(ready).toMatchObject({ kind: "answer", status: 200 });
    reportProof(`fuzz-routes ${backend}`, SEED, {
      routes: listed.length,
      requests: stats.requests,
      streams_cut: stats.streams,
      closed_before_answer: stats.closed,
      head_refusals_unreadable: stats.unreadableHead,
      statuses: JSON.stringify(Object.fromEntries([...stats.statuses].sort((a, b) => a[0] - b[0]))),
    });
  }, 150_000);
});
