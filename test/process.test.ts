import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { call, runCli, spawnServer } from "./support/process.js";

const ADMIN = "process_admin_token_0123456789abcdef";

describe.each(BACKENDS)("the server process on %s", (backend) => {
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const drop of drops) await drop();
  });
  const database = async () => {
    const db = await freshDatabase(backend);
    drops.push(db.drop);
    return db.url;
  };

  it("keeps an acknowledged event through kill -9 the instant after the 202", async () => {
    const env = { DATABASE_URL: await database(), BELFRY_ADMIN_TOKEN: ADMIN };
    const first = await spawnServer(env);
    const user = (await call(first.url, "POST", "/admin/v1/users", ADMIN, { email: "k9@example.com" })).json;
    const key = (await call(first.url, "POST", `/admin/v1/users/${user.id}/keys`, ADMIN, { name: "k" })).json
      .key;
    const body = {
      id: "k9-1",
      type: "system.payment.received",
      user_id: user.id,
      data: { amount_cents: 1, balance_cents: 1 },
    };
    const ack = await call(first.url, "POST", "/admin/v1/events", ADMIN, body);
    first.proc.kill("SIGKILL"); // no await between the 202 and the kill
    expect(ack.status).toBe(202);
    await first.exited;

    const second = await spawnServer(env);
    try {
      const list = await call(second.url, "GET", "/api/v1/me/notifications", key);
      expect(list.json.total).toBe(1);
      expect(list.json.items[0].title).toBe("Payment received · $0.01");
      expect((await call(second.url, "GET", "/api/v1/me/notifications/unread-count", key)).json).toEqual({
        count: 1,
      });
      expect((await call(second.url, "POST", "/admin/v1/events", ADMIN, body)).json.duplicate).toBe(true);
    } finally {
      await second.kill9();
    }
  });

  it("finishes an in-flight request on SIGTERM, then exits 0", async () => {
    const env = { DATABASE_URL: await database(), BELFRY_ADMIN_TOKEN: ADMIN };
    const server = await spawnServer(env);
    const body = JSON.stringify({ email: "term@example.com" });
    // Send half the body, signal, then the rest: the request is in flight across the SIGTERM.
    const answer = new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/admin/v1/users`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${ADMIN}`,
          "content-type": "application/json",
          "content-length": body.length,
        },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.write(body.slice(0, 5));
      setTimeout(() => req.end(body.slice(5)), 300);
    });
    await sleep(100);
    const exit = server.sigterm();
    expect(await answer).toBe(201);
    expect(await exit).toBe(0);

    const again = await spawnServer(env);
    try {
      const dup = await call(again.url, "POST", "/admin/v1/users", ADMIN, { email: "TERM@example.com" });
      expect(dup.status).toBe(409);
    } finally {
      await again.kill9();
    }
  });

  it("answers every request already sent when SIGTERM arrives (20 concurrent ingests)", async () => {
    const env = { DATABASE_URL: await database(), BELFRY_ADMIN_TOKEN: ADMIN };
    const server = await spawnServer(env);
    const user = (await call(server.url, "POST", "/admin/v1/users", ADMIN, { email: "drain@example.com" }))
      .json;
    const event = (i: number) =>
      JSON.stringify({
        id: `drain-${i}`,
        type: "system.payment.received",
        user_id: user.id,
        data: { amount_cents: 1, balance_cents: 1 },
      });
    // Each on its own connection; the signal goes once every request has been written whole.
    const sent: Promise<void>[] = [];
    const answers = Array.from({ length: 20 }, (_, i) => {
      const body = event(i);
      return new Promise<number | string>((resolve) => {
        const req = request(`${server.url}/admin/v1/events`, {
          method: "POST",
          agent: false,
          headers: {
            authorization: `Bearer ${ADMIN}`,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
        });
        sent.push(new Promise((done) => req.on("finish", done)));
        req.on("response", (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
        req.end(body);
      });
    });
    await Promise.all(sent);
    const exit = server.sigterm();
    expect(await Promise.all(answers)).toEqual(Array(20).fill(202));
    expect(await exit).toBe(0);

    const again = await spawnServer(env);
    try {
      for (let i = 0; i < 20; i++) {
        const r = await call(again.url, "POST", "/admin/v1/events", ADMIN, JSON.parse(event(i)));
        expect(r.json.duplicate).toBe(true);
      }
    } finally {
      await again.kill9();
    }
  });

  it("runs the admin CLI on the same library functions and store", async () => {
    const env = { DATABASE_URL: await database() };
    const migrated = await runCli(["migrate"], env);
    expect(migrated.code).toBe(0);
    const json = async (args: string[], stdin?: string) => {
      const r = await runCli(["admin", ...args], env, stdin);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    const owner = await json(["user", "create", "--email", "owner@example.com", "--name", "Owner"]);
    expect(owner).toMatchObject({ email: "owner@example.com", name: "Owner" });
    const admin = await json(["user", "create", "--email", "admin@example.com"]);
    const key = await json(["key", "create", "--user", String(owner.id), "--name", "cli"]);
    expect(key.key).toMatch(/^bf_[A-Za-z0-9_-]{32,}$/);
    const org = await json(["org", "create", "--name", "Acme", "--owner", String(owner.id)]);
    expect(
      await json(["member", "add", "--org", String(org.id), "--user", String(admin.id), "--role", "admin"]),
    ).toEqual({ org_id: org.id, user_id: admin.id, role: "admin" });
    const event = {
      id: "cli-1",
      type: "system.payment.received",
      user_id: owner.id,
      data: { amount_cents: 100, balance_cents: 100 },
    };
    expect(await json(["ingest", "-"], JSON.stringify(event))).toEqual({
      id: "cli-1",
      duplicate: false,
      notifications: 1,
    });

    const bad = await runCli(["admin", "user", "create", "--email", "no-at-sign"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid_request_error");
    expect((await runCli(["admin", "nope"], env)).code).toBe(2);

    const server = await spawnServer({ ...env, BELFRY_ADMIN_TOKEN: ADMIN });
    try {
      const list = await call(server.url, "GET", "/api/v1/me/notifications", key.key);
      expect(list.json.items.map((i: { type: string }) => i.type)).toEqual([
        "system.payment.received",
        "admin.org.member.add",
      ]);
    } finally {
      await server.kill9();
    }
  });
});

describe("start-up", () => {
  it("generates and prints an admin token when none is configured", async () => {
    const db = await freshDatabase("sqlite");
    const server = await spawnServer({ DATABASE_URL: db.url, BELFRY_ADMIN_TOKEN: "" });
    try {
      const token = /Admin token \(generated[^)]*\): (\S+)/.exec(server.output())?.[1];
      expect(token).toBeDefined();
      expect(server.output()).toContain(`Belfry listening on ${server.url}`);
      expect(
        (await call(server.url, "POST", "/admin/v1/users", token, { email: "t@example.com" })).status,
      ).toBe(201);
      expect((await call(server.url, "GET", "/readyz")).json).toEqual({ status: "ok" });
    } finally {
      await server.kill9();
      await db.drop();
    }
  });

  it("refuses a malformed configuration with a clear message", async () => {
    const r = await runCli(["serve"], { PORT: "http", DATABASE_URL: "file:/tmp/never-created.db" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PORT must be an integer");
    const m = await runCli(["serve"], { DATABASE_URL: "mysql://x" });
    expect(m.code).toBe(1);
    expect(m.stderr).toContain("DATABASE_URL must be file:<path> or postgres://");
  });
});
