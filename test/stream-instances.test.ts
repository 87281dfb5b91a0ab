import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { NATS_UP, NATS_URL, type PrivateNats, privateNats, uniqueSubject } from "./support/nats.js";
import { call, runCli, type ServerProcess, spawnServer } from "./support/process.js";
import { openSse, type SseClient } from "./support/sse.js";

const ADMIN = "instances_admin_token_0123456789abcdef";
const FEED = "/api/v1/me/notifications";

/** Rejects when `promise` has not settled within `ms` (a deadline for waiting, not a timing claim). */
const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`${what}: not within ${ms} ms`)))]);

/** True when `promise` is still pending after `ms`. */
const stillPending = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => false), sleep(ms).then(() => true)]);

const notifications = (c: SseClient) => c.events.filter((x) => x.event === "notification");

/** The buses several instances can share changes over; NATS runs on a server of the suite's own. */
const BUSES = NATS_UP ? (["LISTEN/NOTIFY", "NATS"] as const) : (["LISTEN/NOTIFY"] as const);

describe.runIf(BACKENDS.includes("postgres")).each(BUSES)(
  "live push across two instances on one PostgreSQL over %s",
  (bus) => {
    let db: Awaited<ReturnType<typeof freshDatabase>>;
    let nats: PrivateNats | undefined;
    let a: ServerProcess;
    let b: ServerProcess;
    beforeAll(async () => {
      db = await freshDatabase("postgres");
      if (bus === "NATS") nats = await privateNats();
      const env = {
        DATABASE_URL: db.url,
        BELFRY_ADMIN_TOKEN: ADMIN,
        BELFRY_WEBHOOK_WORKER: "false",
        ...(nats && { BELFRY_BUS_URL: nats.url }),
      };
      [a, b] = await Promise.all([spawnServer(env), spawnServer(env)]);
    });
    afterAll(async () => {
      await Promise.all([a?.kill9(), b?.kill9()]);
      await nats?.stop();
      await db?.drop();
    });

    /** Cuts the bus (A's listening connection; the NATS server) around `during`; it comes back. */
    const outage = async (during: () => Promise<void>) => {
      if (nats) {
        await nats.stop();
        await during();
        await nats.start();
        return;
      }
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      try {
        await admin.query(
          "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'belfry-listener' and datname = current_database()",
        );
      } finally {
        await admin.end();
      }
      await during();
    };

    const userWithKey = async (email: string) => {
      const user = (await call(b.url, "POST", "/admin/v1/users", ADMIN, { email })).json;
      const key = (await call(b.url, "POST", `/admin/v1/users/${user.id}/keys`, ADMIN, { name: "k" })).json;
      return { id: user.id as number, key: key.key as string, keyId: key.id as number };
    };
    const pay = (userId: number, id: string) =>
      call(b.url, "POST", "/admin/v1/events", ADMIN, {
        id,
        type: "system.payment.received",
        user_id: userId,
        data: { amount_cents: 100, balance_cents: 100 },
      });

    it("streams on A what is ingested through B within a second, and catches up after the bus reconnects", async () => {
      const user = await userWithKey("two@example.com");
      const stream = await openSse(`${a.url}${FEED}/stream`, { authorization: `Bearer ${user.key}` });
      try {
        await stream.waitFor((e) => e.some((x) => x.event === "unread-count"));
        expect((await pay(user.id, "via-b-1")).status).toBe(202);
        await stream.waitFor((e) => e.some((x) => x.event === "notification"), 1000);
        await stream.waitFor((e) => e.some((x) => x.event === "unread-count" && x.json.count === 1), 1000);

        if (nats) {
          // With BELFRY_BUS_URL no instance listens on PostgreSQL.
          const admin = new pg.Client({ connectionString: db.url });
          await admin.connect();
          const { rows } = await admin
            .query(
              "select count(*)::int as n from pg_stat_activity where application_name = 'belfry-listener' and datname = current_database()",
            )
            .finally(() => admin.end());
          expect(rows[0].n).toBe(0);
        }

        // A reconnects by itself and its streams catch up (the heartbeat is 15 s away).
        await outage(async () => {
          expect((await pay(user.id, "via-b-2")).status).toBe(202);
        });
        await stream.waitFor((e) => e.filter((x) => x.event === "notification").length === 2, 5000);
        const ids = notifications(stream).map((x) => Number(x.id));
        expect(ids).toHaveLength(2);
        expect(ids[1]).toBeGreaterThan(ids[0]!);

        // And the bus works again after the reconnect.
        expect((await pay(user.id, "via-b-3")).status).toBe(202);
        await stream.waitFor((e) => e.filter((x) => x.event === "notification").length === 3, 2000);
      } finally {
        stream.close();
      }
    });

    it("closes a key's streams on A within a second when B revokes it, and no one else's", async () => {
      const revoked = await userWithKey("revoked@example.com");
      const other = await userWithKey("other@example.com");
      const gone = await openSse(`${a.url}${FEED}/stream`, { authorization: `Bearer ${revoked.key}` });
      const kept = await openSse(`${a.url}${FEED}/stream`, { authorization: `Bearer ${other.key}` });
      try {
        await Promise.all([gone.waitFor((e) => e.length > 0), kept.waitFor((e) => e.length > 0)]);
        expect((await call(b.url, "POST", `/admin/v1/keys/${revoked.keyId}/revoke`, ADMIN)).status).toBe(200);
        await within(gone.ended, 1000, "the revoked key's stream on A ends");
        expect(await stillPending(kept.ended, 300)).toBe(true);
        expect((await call(a.url, "GET", `${FEED}/unread-count`, revoked.key)).status).toBe(401);
      } finally {
        gone.close();
        kept.close();
      }
    });

    it("closes a ticket's stream on A within a second when the same ticket opens a stream on B", async () => {
      const user = await userWithKey("t@example.com");
      const ticket = (await call(a.url, "POST", `${FEED}/stream-tickets`, user.key)).json.ticket;
      const onA = await openSse(`${a.url}${FEED}/stream?ticket=${ticket}`);
      await onA.waitFor((e) => e.length > 0);
      const onB = await openSse(`${b.url}${FEED}/stream?ticket=${ticket}`);
      try {
        expect(onB.status).toBe(200);
        await within(onA.ended, 1000, "A's stream on the reused ticket ends");
        await onB.waitFor((e) => e.length > 0);
      } finally {
        onA.close();
        onB.close();
      }
    });

    it("refuses a session ended on B at once on A and closes its streams there", async () => {
      const user = (await call(b.url, "POST", "/admin/v1/users", ADMIN, { email: "s@example.com" })).json;
      const other = (await call(b.url, "POST", "/admin/v1/users", ADMIN, { email: "s2@example.com" })).json;
      const token = (await call(b.url, "POST", `/admin/v1/users/${user.id}/sessions`, ADMIN)).json.token;
      const theirs = (await call(b.url, "POST", `/admin/v1/users/${other.id}/sessions`, ADMIN)).json.token;
      expect((await call(a.url, "GET", `${FEED}/unread-count`, token)).status).toBe(200);
      const ticket = (await call(a.url, "POST", `${FEED}/stream-tickets`, token)).json.ticket;
      const clients: SseClient[] = [];
      try {
        for (const [query, t] of [
          ["", token],
          [`?ticket=${ticket}`, undefined],
          ["", theirs],
        ] as const) {
          const c = await openSse(
            `${a.url}${FEED}/stream${query}`,
            t ? { authorization: `Bearer ${t}` } : {},
          );
          clients.push(c);
          expect(c.status).toBe(200);
          await c.waitFor((e) => e.length > 0);
        }
        expect((await call(b.url, "DELETE", `/admin/v1/users/${user.id}/sessions`, ADMIN)).status).toBe(204);
        const refused = await call(a.url, "GET", `${FEED}/unread-count`, token);
        expect(refused.status).toBe(401);
        expect(refused.json.error.type).toBe("authentication_error");
        // Instances heartbeat every 15 s, so ending within 5 s is the bus's doing.
        await within(Promise.all([clients[0]!.ended, clients[1]!.ended]), 5000, "streams on A end");
        expect(await stillPending(clients[2]!.ended, 300)).toBe(true);
        expect((await call(a.url, "GET", `${FEED}/unread-count`, theirs)).status).toBe(200);
      } finally {
        for (const c of clients) c.close();
      }
    });
  },
);

describe.runIf(NATS_UP)("a server and `belfry admin` on one SQLite file over NATS", () => {
  it("pushes what the CLI ingests and closes a stream whose key the CLI revokes, well before a heartbeat", async () => {
    const db = await freshDatabase("sqlite");
    const env = {
      DATABASE_URL: db.url,
      BELFRY_ADMIN_TOKEN: ADMIN,
      BELFRY_BUS_URL: NATS_URL,
      BELFRY_BUS_SUBJECT: uniqueSubject("sqlite-cli"),
    };
    const server = await spawnServer(env);
    let stream: SseClient | undefined;
    try {
      const user = (await call(server.url, "POST", "/admin/v1/users", ADMIN, { email: "cli@example.com" }))
        .json;
      const key = (await call(server.url, "POST", `/admin/v1/users/${user.id}/keys`, ADMIN, { name: "k" }))
        .json;
      stream = await openSse(`${server.url}${FEED}/stream`, { authorization: `Bearer ${key.key}` });
      const s = stream;
      await s.waitFor((e) => e.length > 0);
      const event = {
        id: "from-the-cli",
        type: "system.payment.received",
        user_id: user.id,
        data: { amount_cents: 100, balance_cents: 100 },
      };
      const ingested = await runCli(["admin", "ingest", "-"], env, JSON.stringify(event));
      expect(ingested.code, ingested.stderr).toBe(0);
      // Without a bus between the processes the stream would learn of it at its heartbeat (15 s).
      await s.waitFor((e) => e.some((x) => x.event === "notification"), 5000);
      const revoked = await runCli(["admin", "key", "revoke", String(key.id)], env);
      expect(revoked.code, revoked.stderr).toBe(0);
      await within(s.ended, 5000, "the stream of the key the CLI revoked ends");
    } finally {
      stream?.close();
      await server.kill9();
      await db.drop();
    }
  });
});
