import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeps } from "../src/deps.js";
import { buildApp } from "../src/http/app.js";
import { loggerOptions, redactUrl } from "../src/http/logger.js";
import { openStore } from "../src/store/store.js";
import { BACKENDS, openTestStore, type TestStore } from "./support/backends.js";
import { ADMIN_TOKEN, isEnvelope } from "./support/harness.js";

describe("a store that does not answer", () => {
  // Port 1 on loopback: nothing listens, so every connection is refused at once.
  const store = openStore("postgres://postgres@127.0.0.1:1/belfry", { poolSize: 1 });
  afterAll(() => store.close());

  it("answers 503 unavailable_error with Retry-After, while /healthz stays 200", async () => {
    const app = await buildApp({ deps: createDeps(store), adminToken: ADMIN_TOKEN });
    const inject = (method: "GET" | "POST", url: string, key?: string, body?: unknown) =>
      app.inject({
        method,
        url,
        headers: key ? { authorization: `Bearer ${key}` } : {},
        ...(body ? { payload: body as object } : {}),
      });
    try {
      expect((await inject("GET", "/healthz")).json()).toEqual({ status: "ok" });
      for (const r of [
        await inject("GET", "/readyz"),
        await inject("POST", "/admin/v1/users", ADMIN_TOKEN, { email: "a@example.com" }),
        await inject("GET", "/api/v1/me/notifications/unread-count", `bf_${"a".repeat(43)}`),
      ]) {
        expect(
          isEnvelope(
            { status: r.statusCode, json: r.json(), headers: {}, text: r.body },
            503,
            "unavailable_error",
          ),
        ).toBe(true);
        expect(r.headers["retry-after"]).toBe("1");
      }
    } finally {
      await app.close();
    }
  });
});

describe.each(BACKENDS)("logs on %s", (backend) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await openTestStore(backend);
  });
  afterAll(() => t.drop());

  it("are JSON lines with request ids and never hold a key or the admin token", async () => {
    let text = "";
    const stream = new Writable({
      write(chunk, _enc, done) {
        text += chunk;
        done();
      },
    });
    const app = await buildApp({
      deps: createDeps(t.store),
      adminToken: ADMIN_TOKEN,
      logger: { ...(loggerOptions("trace") as object), stream },
    });
    try {
      const auth = (key: string) => ({ authorization: `Bearer ${key}` });
      const user = (
        await app.inject({
          method: "POST",
          url: "/admin/v1/users",
          headers: auth(ADMIN_TOKEN),
          payload: { email: "log@example.com" },
        })
      ).json();
      const created = await app.inject({
        method: "POST",
        url: `/admin/v1/users/${user.id}/keys`,
        headers: auth(ADMIN_TOKEN),
        payload: { name: "k" },
      });
      const key = created.json().key as string;
      const listed = await app.inject({ method: "GET", url: "/api/v1/me/notifications", headers: auth(key) });
      await app.inject({ method: "GET", url: "/api/v1/me/notifications", headers: auth(`${key}x`) });
      await app.inject({ method: "GET", url: "/admin/v1/nope", headers: auth(ADMIN_TOKEN) });
      // A ticket is a credential in the URL; it is redacted whatever the spelling of its name.
      const ticket = (
        await app.inject({
          method: "POST",
          url: "/api/v1/me/notifications/stream-tickets",
          headers: auth(key),
        })
      ).json().ticket as string;
      const twice = await app.inject({
        method: "GET",
        url: `/api/v1/me/notifications/stream?ticket=&%74icket=${ticket}`,
      });
      expect(twice.statusCode).toBe(400);

      const lines = text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines.length).toBeGreaterThan(5);
      expect(lines.filter((l) => l.reqId).map((l) => l.reqId)).toContain(listed.headers["x-request-id"]);
      expect(text).not.toContain(key);
      expect(text).not.toContain(key.slice(3));
      expect(text).not.toContain(ADMIN_TOKEN);
      expect(text).not.toContain(ticket.slice(4));
    } finally {
      await app.close();
    }
  });
});

describe("redactUrl", () => {
  it("redacts a ticket by its decoded name, in any spelling or position", () => {
    const t = "bft_secret";
    for (const url of [
      `/s?ticket=${t}`,
      `/s?a=1&ticket=${t}&b=2`,
      `/s?ticket=&%74icket=${t}`,
      `/s?%74icket=${t}`,
      `/s?TICKET=${t}`,
      `/s?%74%69%63%6B%65%74=${t}`,
      `/s?ticket%=${t}`,
    ]) {
      expect(redactUrl(url), url).not.toContain("secret");
    }
    expect(redactUrl("/s?page=2&type=x")).toBe("/s?page=2&type=x");
    expect(redactUrl("/api/v1/me/notifications")).toBe("/api/v1/me/notifications");
  });
});
