import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { call, spawnServer } from "./support/process.js";

const ADMIN = "connloss_admin_token_0123456789abcdef";

/**
 * A PostgreSQL connection dropped while a request holds it (a failover, a restart,
 * `pg_terminate_backend`) must cost that request a 503, never the process: `pg` emits `error` on a
 * checked-out client, and an `error` event nobody listens to kills Node.
 */
describe.runIf(BACKENDS.includes("postgres"))("PostgreSQL connections dropped under load", () => {
  it("keeps serving when every connection is terminated while 12 clients ingest", async () => {
    const db = await freshDatabase("postgres");
    const server = await spawnServer({ DATABASE_URL: db.url, BELFRY_ADMIN_TOKEN: ADMIN });
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    let exitedEarly: number | string | undefined;
    void server.exited.then((code) => (exitedEarly = code));
    try {
      const user = (await call(server.url, "POST", "/admin/v1/users", ADMIN, { email: "loss@example.com" }))
        .json;
      const event = (id: string) => ({
        id,
        type: "system.payment.received",
        user_id: user.id,
        data: { amount_cents: 100, balance_cents: 100 },
      });
      const acknowledged: string[] = [];
      const statuses = new Map<number, number>();
      let stop = false;
      const client = async (c: number) => {
        for (let i = 0; !stop && exitedEarly === undefined; i++) {
          const id = `loss-${c}-${i}`;
          try {
            const r = await call(server.url, "POST", "/admin/v1/events", ADMIN, event(id));
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
            if (r.status === 202) acknowledged.push(id);
          } catch {
            statuses.set(0, (statuses.get(0) ?? 0) + 1); // connection refused: the process died
          }
        }
      };
      const clients = Array.from({ length: 12 }, (_, c) => client(c));
      for (let round = 0; round < 5; round++) {
        await sleep(150);
        await admin.query(
          "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'belfry'",
        );
      }
      await sleep(300);
      stop = true;
      await Promise.all(clients);

      expect(exitedEarly, server.output().slice(-2000)).toBeUndefined();
      expect(statuses.get(500) ?? 0, JSON.stringify([...statuses])).toBe(0);
      expect(statuses.get(0) ?? 0).toBe(0);
      expect([...statuses.keys()].every((s) => s === 202 || s === 503)).toBe(true);
      expect(acknowledged.length).toBeGreaterThan(0);

      // Serving again, and every acknowledged event is stored exactly once.
      const after = await call(server.url, "POST", "/admin/v1/events", ADMIN, event("loss-after"));
      expect(after.status).toBe(202);
      const stored = await admin.query<{ id: string }>(
        "select idempotency_key as id from events where idempotency_key like 'loss-%'",
      );
      const ids = new Set(stored.rows.map((r) => r.id));
      expect(acknowledged.filter((id) => !ids.has(id))).toEqual([]);
      const counted = await admin.query<{ n: number }>(
        "select count(*)::int as n from notifications where user_id = $1",
        [user.id],
      );
      expect(counted.rows[0]?.n).toBe(stored.rows.length);
    } finally {
      await admin.end().catch(() => {});
      await server.kill9();
      await db.drop();
    }
  });
});
