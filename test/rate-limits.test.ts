import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, startHarness } from "./support/harness.js";
import { call, freePort, spawnServer } from "./support/process.js";
import { openSse, type SseClient } from "./support/sse.js";

const FEED = "/api/v1/me/notifications";
const COUNT = `${FEED}/unread-count`;

describe.each(BACKENDS)("rate limits on %s", (backend) => {
  let h: Harness;
  let base: string;
  const streams: SseClient[] = [];
  beforeAll(async () => {
    h = await startHarness(
      backend,
      {},
      {
        limits: { perCredentialPerMinute: 5, authFailuresPerMinute: 3 },
        stream: { maxPerCredential: 2 },
      },
    );
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  });
  afterEach(() => {
    for (const s of streams.splice(0)) s.close();
  });
  afterAll(() => h.close());

  it("counts each credential's requests, says so on every answer, and answers 429 past the budget", async () => {
    const a = await h.userWithKey();
    const b = await h.userWithKey();
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await h.request("GET", COUNT, { key: a.key });
      expect(r.status).toBe(200);
      expect(r.headers["ratelimit-limit"]).toBe("5");
      expect(Number(r.headers["ratelimit-reset"])).toBeGreaterThan(0);
      expect(Number(r.headers["ratelimit-reset"])).toBeLessThanOrEqual(60);
      seen.push(Number(r.headers["ratelimit-remaining"]));
    }
    expect(seen).toEqual([4, 3, 2, 1, 0]);
    const over = await h.request("POST", `${FEED}/mark-all-read`, { key: a.key });
    expect(isEnvelope(over, 429, "rate_limit_error")).toBe(true);
    expect(Number(over.headers["retry-after"])).toBeGreaterThan(0);
    expect(over.headers["ratelimit-remaining"]).toBe("0");
    // Another credential has its own budget; errors carry the headers too.
    const other = await h.request("GET", `${FEED}?type=nope`, { key: b.key });
    expect(isEnvelope(other, 400, "invalid_request_error")).toBe(true);
    expect(other.headers["ratelimit-remaining"]).toBe("4");
    // The admin API has no limit.
    for (let i = 0; i < 8; i++) {
      const r = await h.request("POST", "/admin/v1/users", {
        key: ADMIN_TOKEN,
        body: { email: `nolimit-${i}-${randomBytes(4).toString("hex")}@example.com` },
      });
      expect(r.status).toBe(201);
      expect(r.headers["ratelimit-limit"]).toBeUndefined();
    }
  });

  it("refuses an address after too many failed authentications, before looking the credential up", async () => {
    const ip = `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
    const from = async (key: string) => {
      const r = await h.app.inject({
        method: "GET",
        url: COUNT,
        remoteAddress: ip,
        headers: { authorization: `Bearer ${key}` },
      });
      return { status: r.statusCode, json: r.json(), headers: r.headers, text: r.body };
    };
    const u = await h.userWithKey();
    for (let i = 0; i < 3; i++) {
      expect(
        isEnvelope(await from(`bf_${randomBytes(32).toString("base64url")}`), 401, "authentication_error"),
      ).toBe(true);
    }
    const blocked = await from(`bf_${randomBytes(32).toString("base64url")}`);
    expect(isEnvelope(blocked, 429, "rate_limit_error")).toBe(true);
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
    // Even a good key from that address waits; the same key from elsewhere works.
    expect((await from(u.key)).status).toBe(429);
    expect((await h.request("GET", COUNT, { key: u.key })).status).toBe(200);
  });

  it("holds at most the configured number of live streams per credential", async () => {
    const u = await h.userWithKey();
    const open = () => openSse(`${base}${FEED}/stream`, { authorization: `Bearer ${u.key}` });
    for (let i = 0; i < 2; i++) {
      const s = await open();
      streams.push(s);
      await s.waitFor((e) => e.length > 0);
      expect(s.headers["ratelimit-limit"]).toBe("5");
    }
    const third = await open();
    streams.push(third);
    expect(third.status).toBe(429);
    expect(JSON.parse(third.events[0]?.data ?? "{}").error.type).toBe("rate_limit_error");
    streams.shift()?.close();
    // The server notices the close; then a slot is free again.
    let again: SseClient | undefined;
    for (let i = 0; i < 50 && again?.status !== 200; i++) {
      again?.close();
      await sleep(20);
      again = await open();
    }
    streams.push(again!);
    expect(again?.status).toBe(200);
  });
});

/** A private redis-server on a free port, stopped and started by the tests. */
async function privateRedis() {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    );
    const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0 });
    probe.on("error", () => {});
    for (let i = 0; i < 100; i++) {
      try {
        await probe.connect();
        if ((await probe.ping()) === "PONG") break;
      } catch {
        await sleep(50);
      }
    }
    probe.disconnect();
  };
  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p) return;
    const exited = new Promise((resolve) => p.on("exit", resolve));
    p.kill("SIGKILL");
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, start, stop };
}

describe("rate limits shared through Redis", () => {
  let redis: Awaited<ReturnType<typeof privateRedis>>;
  const clients: Redis[] = [];
  const harnesses: Harness[] = [];
  beforeAll(async () => {
    redis = await privateRedis();
  });
  afterAll(async () => {
    for (const h of harnesses) await h.close();
    for (const c of clients) c.disconnect();
    await redis.stop();
  });

  const instance = async (namespace: string) => {
    const client = new Redis(redis.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      commandTimeout: 1000,
      retryStrategy: () => 200,
    });
    client.on("error", () => {});
    clients.push(client);
    await new Promise((resolve) => client.once("ready", resolve));
    const h = await startHarness(
      "sqlite",
      {},
      { limits: { perCredentialPerMinute: 4, authFailuresPerMinute: 2, redis: client, namespace } },
    );
    harnesses.push(h);
    return h;
  };

  it("shares one budget between two instances, and answers 503 fast while Redis is down, then recovers", async () => {
    const namespace = `belfry-test-${randomBytes(4).toString("hex")}:`;
    const a = await instance(namespace);
    // The second instance has its own store: a credential it does not know is still counted.
    const b = await instance(namespace);
    const u = await a.userWithKey();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await (i % 2 ? b : a).request("GET", COUNT, { key: u.key })).status);
    expect(statuses).toEqual([200, 401, 200, 401]);
    const over = await b.request("GET", COUNT, { key: u.key });
    expect(isEnvelope(over, 429, "rate_limit_error")).toBe(true);
    expect(over.headers["ratelimit-limit"]).toBe("4");

    await redis.stop();
    const started = Date.now();
    const down = await a.request("GET", COUNT, { key: u.key });
    expect(isEnvelope(down, 503, "unavailable_error")).toBe(true);
    expect(down.headers["retry-after"]).toBeDefined();
    expect(Date.now() - started).toBeLessThan(2000);
    // The admin API does not depend on Redis.
    expect(
      (
        await a.request("POST", "/admin/v1/users", {
          key: ADMIN_TOKEN,
          body: { email: `r-${namespace}@example.com` },
        })
      ).status,
    ).toBe(201);

    await redis.start();
    const fresh = await a.userWithKey();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await a.request("GET", COUNT, { key: fresh.key })).status;
      if (status !== 200) await sleep(100);
    }
    expect(status).toBe(200);
  });

  it("shares failed-authentication counts between instances", async () => {
    const namespace = `belfry-test-${randomBytes(4).toString("hex")}:`;
    const a = await instance(namespace);
    const b = await instance(namespace);
    const bad = () => `bf_${randomBytes(32).toString("base64url")}`;
    expect((await a.request("GET", COUNT, { key: bad() })).status).toBe(401);
    expect((await b.request("GET", COUNT, { key: bad() })).status).toBe(401);
    expect((await a.request("GET", COUNT, { key: bad() })).status).toBe(429);
    expect((await b.request("GET", COUNT, { key: bad() })).status).toBe(429);
  });
});

describe("two server processes with BELFRY_REDIS_URL", () => {
  it("share one budget per credential", async () => {
    const redis = await privateRedis();
    const db = await freshDatabase(BACKENDS.includes("postgres") ? "postgres" : "sqlite");
    const admin = "redis_admin_token_0123456789abcdef";
    const env = {
      DATABASE_URL: db.url,
      BELFRY_ADMIN_TOKEN: admin,
      BELFRY_REDIS_URL: redis.url,
      BELFRY_RATE_LIMIT: "4",
      BELFRY_WEBHOOK_WORKER: "false",
    };
    const a = await spawnServer(env);
    const b = BACKENDS.includes("postgres") ? await spawnServer(env) : a;
    try {
      const user = (await call(a.url, "POST", "/admin/v1/users", admin, { email: "shared@example.com" }))
        .json;
      const key = (await call(a.url, "POST", `/admin/v1/users/${user.id}/keys`, admin, { name: "k" })).json
        .key;
      const statuses = [];
      for (let i = 0; i < 5; i++)
        statuses.push((await call(i % 2 ? b.url : a.url, "GET", COUNT, key)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 429]);
    } finally {
      await a.kill9();
      if (b !== a) await b.kill9();
      await redis.stop();
      await db.drop();
    }
  });
});
