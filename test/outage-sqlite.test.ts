import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Sqlite from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { immutableFilesSupported, setImmutable } from "./support/immutable-files.js";
import { expectAcknowledgedDeliveryKept, expectOutagePromises } from "./support/outage-promises.js";
import { type OutageRig, outageEnv, startOutageRig } from "./support/outage-rig.js";
import { call, runCli, type ServerProcess, spawnServer } from "./support/process.js";
import { waitFor } from "./support/receiver.js";

const ADMIN = "outage_sqlite_admin_token_0123456789abcdef";

/** The database file and the files SQLite keeps beside it in WAL mode. */
const files = (path: string) => [path, `${path}-wal`, `${path}-shm`];

/** What a fresh connection reports when it writes to `path`. */
function freshWriteError(path: string): string | undefined {
  const db = new Sqlite(path, { timeout: 0 });
  try {
    db.pragma("user_version = 7");
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  } finally {
    db.close();
  }
}

/**
 * The embedded store's worst day: another process holds the database's write lock, and the file
 * turns read-only, while a child-process server takes ingests and reads, holds a live stream
 * open and delivers webhooks to a local receiver. The same promises as for PostgreSQL.
 */
describe("an embedded-store outage", () => {
  const dirs: string[] = [];
  const servers: ServerProcess[] = [];
  const rigs: OutageRig[] = [];
  afterAll(async () => {
    for (const rig of rigs) await rig.close().catch(() => {});
    for (const server of servers) await server.kill9().catch(() => {});
    for (const dir of dirs) {
      if (immutableFilesSupported) await setImmutable(files(join(dir, "belfry.db")), false).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const databasePath = () => {
    const dir = mkdtempSync(join(tmpdir(), "belfry-outage-"));
    dirs.push(dir);
    return join(dir, "belfry.db");
  };

  it("answers 503 with Retry-After within 2 s while the file is locked or read-only, recovers within 5 s, and loses nothing", async () => {
    const path = databasePath();
    const server = await spawnServer({ ...outageEnv(ADMIN), DATABASE_URL: `file:${path}` });
    servers.push(server);
    const rig = await startOutageRig(server, ADMIN, "sqlite");
    rigs.push(rig);

    await sleep(1500);
    // Another process (this one) takes the write lock and holds it, as a long CLI transaction or
    // a sqlite3 shell's BEGIN EXCLUSIVE would.
    let locker: Sqlite.Database | undefined;
    await rig.outage(
      async () => {
        locker = new Sqlite(path);
        locker.exec("begin exclusive");
      },
      async () => {
        locker?.exec("commit");
        locker?.close();
      },
    );
    // The CLI beside the loaded server: its writes and the server's take turns.
    const cli = await runCli(["admin", "user", "create", "--email", "beside@example.com"], {
      DATABASE_URL: `file:${path}`,
    });
    expect(cli.code, cli.stderr).toBe(0);
    if (immutableFilesSupported) {
      await rig.outage(
        async () => {
          await setImmutable(files(path).slice(0, 2), true);
          // What a connection opened now sees: a read-only database.
          expect(freshWriteError(path)).toBe("SQLITE_READONLY");
        },
        () => setImmutable(files(path), false),
      );
    }
    await sleep(1000);
    await rig.stopLoad();
    await rig.ingestUntilAcknowledged("sqlite-after");
    await expectOutagePromises(rig, { readsServed: true });
  }, 120_000);

  it("a delivery acknowledged while the file is locked is recorded once it is free, and not sent again", async () => {
    const path = databasePath();
    const server = await spawnServer({ ...outageEnv(ADMIN), DATABASE_URL: `file:${path}` });
    servers.push(server);
    let locker: Sqlite.Database | undefined;
    await expectAcknowledgedDeliveryKept(
      server,
      ADMIN,
      async () => {
        locker = new Sqlite(path);
        locker.exec("begin exclusive");
      },
      async () => {
        locker?.exec("commit");
        locker?.close();
      },
    );
  }, 60_000);

  it.runIf(immutableFilesSupported)(
    "starts on a read-only file: reads are served, writes get 503, and it takes writes once the file is writable",
    async () => {
      const path = databasePath();
      const env = { ...outageEnv(ADMIN), DATABASE_URL: `file:${path}` };
      const first = await spawnServer(env);
      servers.push(first);
      const user = (await call(first.url, "POST", "/admin/v1/users", ADMIN, { email: "ro@example.com" }))
        .json;
      const key = (await call(first.url, "POST", `/admin/v1/users/${user.id}/keys`, ADMIN, { name: "k" }))
        .json.key;
      const pay = (id: string) => ({
        id,
        type: "system.payment.received",
        user_id: user.id,
        data: { amount_cents: 1, balance_cents: 1 },
      });
      expect((await call(first.url, "POST", "/admin/v1/events", ADMIN, pay("ro-before"))).status).toBe(202);
      expect(await first.sigterm()).toBe(0);

      // A restore left the file read-only (a read-only volume, or permissions gone wrong).
      await setImmutable([path], true);
      const server = await spawnServer(env);
      servers.push(server);
      const timed = async (method: string, path: string, key: string | undefined, body?: unknown) => {
        const started = Date.now();
        const r = await fetch(server.url + path, {
          method,
          headers: {
            ...(key && { authorization: `Bearer ${key}` }),
            ...(body !== undefined && { "content-type": "application/json" }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return {
          status: r.status,
          // biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
          json: (await r.json()) as any,
          retryAfter: r.headers.get("retry-after"),
          ms: Date.now() - started,
        };
      };
      const answers = [
        await timed("GET", "/readyz", undefined),
        await timed("POST", "/admin/v1/events", ADMIN, pay("ro-during")),
        await timed("POST", "/api/v1/me/notifications/mark-all-read", key),
      ];
      for (const a of answers) {
        expect(a.status).toBe(503);
        expect(a.json.error.type).toBe("unavailable_error");
        expect(a.retryAfter).toMatch(/^[1-9]\d*$/);
        expect(a.ms).toBeLessThanOrEqual(2000);
      }
      const count = await timed("GET", "/api/v1/me/notifications/unread-count", key);
      expect(count.status, JSON.stringify(count.json)).toBe(200);
      expect(count.json.count).toBe(1);
      expect((await timed("GET", "/healthz", undefined)).status).toBe(200);

      await setImmutable([path], false);
      const back = Date.now();
      await waitFor(
        async () => (await timed("POST", "/admin/v1/events", ADMIN, pay("ro-during"))).status === 202,
      );
      expect(Date.now() - back).toBeLessThanOrEqual(5000);
      expect((await timed("GET", "/readyz", undefined)).status).toBe(200);
      const after = await timed("GET", "/api/v1/me/notifications/unread-count", key);
      expect(after.json.count).toBe(2);
      const again = await timed("POST", "/admin/v1/events", ADMIN, pay("ro-before"));
      expect(again.json.duplicate).toBe(true);
    },
    60_000,
  );
});
