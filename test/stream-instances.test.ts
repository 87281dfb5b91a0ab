import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { call, spawnServer } from "./support/process.js";
import { openSse } from "./support/sse.js";

const ADMIN = "instances_admin_token_0123456789abcdef";

describe.runIf(BACKENDS.includes("postgres"))("live push across two instances on one PostgreSQL", () => {
  it("streams on A what is ingested through B within a second, and catches up after A's listener reconnects", async () => {
    const db = await freshDatabase("postgres");
    const env = { DATABASE_URL: db.url, BELFRY_ADMIN_TOKEN: ADMIN, BELFRY_WEBHOOK_WORKER: "false" };
    const [a, b] = await Promise.all([spawnServer(env), spawnServer(env)]);
    const admin = new pg.Client({ connectionString: db.url });
    try {
      const user = (await call(b.url, "POST", "/admin/v1/users", ADMIN, { email: "two@example.com" })).json;
      const key = (await call(b.url, "POST", `/admin/v1/users/${user.id}/keys`, ADMIN, { name: "k" })).json
        .key;
      const stream = await openSse(`${a.url}/api/v1/me/notifications/stream`, {
        authorization: `Bearer ${key}`,
      });
      await stream.waitFor((e) => e.some((x) => x.event === "unread-count"));
      const pay = (id: string) =>
        call(b.url, "POST", "/admin/v1/events", ADMIN, {
          id,
          type: "system.payment.received",
          user_id: user.id,
          data: { amount_cents: 100, balance_cents: 100 },
        });

      const sent = Date.now();
      expect((await pay("via-b-1")).status).toBe(202);
      await stream.waitFor((e) => e.some((x) => x.event === "notification"), 1000);
      expect(Date.now() - sent).toBeLessThan(1000);
      await stream.waitFor((e) => e.some((x) => x.event === "unread-count" && x.json.count === 1), 1000);

      // Cut A's listening connection: A reconnects by itself and its streams catch up.
      await admin.connect();
      await admin.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'belfry-listener'",
      );
      expect((await pay("via-b-2")).status).toBe(202);
      await stream.waitFor((e) => e.filter((x) => x.event === "notification").length === 2, 5000);
      const ids = stream.events.filter((x) => x.event === "notification").map((x) => Number(x.id));
      expect(ids).toHaveLength(2);
      expect(ids[1]).toBeGreaterThan(ids[0]!);

      // And the bus works again after the reconnect.
      expect((await pay("via-b-3")).status).toBe(202);
      await stream.waitFor((e) => e.filter((x) => x.event === "notification").length === 3, 2000);
      stream.close();
    } finally {
      await admin.end().catch(() => {});
      await Promise.all([a.kill9(), b.kill9()]);
      await db.drop();
    }
  });

  it("closes a ticket's stream on A within a second when the same ticket opens a stream on B", async () => {
    const db = await freshDatabase("postgres");
    const env = { DATABASE_URL: db.url, BELFRY_ADMIN_TOKEN: ADMIN, BELFRY_WEBHOOK_WORKER: "false" };
    const [a, b] = await Promise.all([spawnServer(env), spawnServer(env)]);
    try {
      const user = (await call(a.url, "POST", "/admin/v1/users", ADMIN, { email: "t@example.com" })).json;
      const key = (await call(a.url, "POST", `/admin/v1/users/${user.id}/keys`, ADMIN, { name: "k" })).json
        .key;
      const ticket = (await call(a.url, "POST", "/api/v1/me/notifications/stream-tickets", key)).json.ticket;
      const onA = await openSse(`${a.url}/api/v1/me/notifications/stream?ticket=${ticket}`);
      await onA.waitFor((e) => e.length > 0);
      const onB = await openSse(`${b.url}/api/v1/me/notifications/stream?ticket=${ticket}`);
      expect(onB.status).toBe(200);
      await Promise.race([
        onA.ended,
        sleep(1000).then(() => Promise.reject(new Error("A's stream on the reused ticket is still open"))),
      ]);
      await onB.waitFor((e) => e.length > 0);
      onB.close();
    } finally {
      await Promise.all([a.kill9(), b.kill9()]);
      await db.drop();
    }
  });
});
