import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, startHarness } from "./support/harness.js";

/** Edges of the API (keys and users, errors, the feed, orgs) that sit between the bigger suites. */
describe.each(BACKENDS)("contract edges on %s", (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend);
  });
  afterAll(() => h.close());
  const admin = (method: string, url: string, body?: unknown) =>
    h.request(method, url, { key: ADMIN_TOKEN, body });

  it("refuses a body on endpoints that take none, but accepts none or {}", async () => {
    const u = await h.userWithKey();
    await h.pay(u.id, `nb-${u.id}`);
    const url = "/api/v1/me/notifications/mark-all-read";
    for (const body of [{ foo: 1 }, [1, 2], "x", 0]) {
      expect(
        isEnvelope(await h.request("POST", url, { key: u.key, body }), 400, "invalid_request_error"),
      ).toBe(true);
    }
    expect((await h.request("GET", "/api/v1/me/notifications/unread-count", { key: u.key })).json.count).toBe(
      1,
    );
    expect((await h.request("POST", url, { key: u.key, body: {} })).json).toEqual({ marked_read: 1 });
    expect((await h.request("POST", url, { key: u.key })).json).toEqual({ marked_read: 0 });
    const key = await admin("POST", `/admin/v1/users/${u.id}/keys`, { name: "k" });
    const revoke = await admin("POST", `/admin/v1/keys/${key.json.id}/revoke`, { reason: "x" });
    expect(isEnvelope(revoke, 400, "invalid_request_error")).toBe(true);
  });

  it("answers 413 for an oversized body whatever its content type", async () => {
    const r = await h.request("POST", "/admin/v1/users", {
      raw: "x".repeat(1024 * 1024 + 1),
      headers: { "content-type": "text/plain" },
    });
    expect(isEnvelope(r, 413, "invalid_request_error")).toBe(true);
  });

  it("limits an org key to its own org", async () => {
    const owner = await h.userWithKey("owner");
    const member = await h.userWithKey("member");
    const orgA = (await admin("POST", "/admin/v1/orgs", { name: "A", owner_user_id: owner.id })).json;
    const orgB = (await admin("POST", "/admin/v1/orgs", { name: "B", owner_user_id: owner.id })).json;
    await admin("POST", `/admin/v1/orgs/${orgB.id}/members`, { user_id: member.id, role: "member" });
    const keyA = (await admin("POST", `/admin/v1/orgs/${orgA.id}/keys`, { user_id: owner.id, name: "ci" }))
      .json;
    const keyB = (await admin("POST", `/admin/v1/orgs/${orgB.id}/keys`, { user_id: member.id, name: "m" }))
      .json;
    const path = `/api/v1/orgs/${orgB.id}/keys/${keyB.id}/revoke`;
    expect(isEnvelope(await h.request("POST", path, { key: keyA.key }), 403, "permission_error")).toBe(true);
    expect((await h.request("POST", path, { key: owner.key })).status).toBe(200);
  });

  it("bounds occurred_at below at the epoch", async () => {
    const u = await h.userWithKey();
    const r = await h.pay(u.id, `old-${u.id}`, undefined, { occurred_at: "1969-12-31T23:59:59Z" });
    expect(isEnvelope(r, 400, "invalid_request_error")).toBe(true);
    expect(
      (await h.pay(u.id, `epoch-${u.id}`, undefined, { occurred_at: "1970-01-01T00:00:00Z" })).status,
    ).toBe(202);
  });

  it("reads page numbers with leading zeros as integers", async () => {
    const u = await h.userWithKey();
    const r = await h.request("GET", "/api/v1/me/notifications?page=0001&page_size=00000000002", {
      key: u.key,
    });
    expect(r.json).toMatchObject({ page: 1, page_size: 2 });
  });

  it("folds case fully for email uniqueness and accepts an empty name", async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    expect(
      (await admin("POST", "/admin/v1/users", { email: `straße-${tag}@example.com`, name: "" })).json.name,
    ).toBe("");
    expect((await admin("POST", "/admin/v1/users", { email: `STRASSE-${tag}@EXAMPLE.COM` })).status).toBe(
      409,
    );
  });
});

describe("errors raised before Fastify sees the request", () => {
  let h: Harness;
  let port: number;
  beforeAll(async () => {
    h = await startHarness("sqlite");
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    port = (h.app.server.address() as { port: number }).port;
  });
  afterAll(() => h.close());

  const raw = (text: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => socket.end(text));
      let out = "";
      socket.on("data", (d) => (out += d));
      socket.on("end", () => resolve(out));
      socket.on("error", reject);
    });
  const envelopeOf = (response: string) => JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4));

  it("answers oversized headers with 431 and the envelope", async () => {
    const response = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(response.startsWith("HTTP/1.1 431")).toBe(true);
    expect(envelopeOf(response).error.type).toBe("invalid_request_error");
  });

  it("answers a HEAD with oversized headers with a bodiless 431", async () => {
    const response = await raw(`HEAD /healthz?q=${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(response.startsWith("HTTP/1.1 431")).toBe(true);
    expect(response.endsWith("\r\n\r\n")).toBe(true);
  });

  it("answers unparseable HTTP with 400 and the envelope", async () => {
    const response = await raw(
      "POST /admin/v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    expect(response.startsWith("HTTP/1.1 400")).toBe(true);
    expect(envelopeOf(response)).toEqual({
      error: { type: "invalid_request_error", message: "The request could not be parsed as HTTP." },
    });
  });
});
