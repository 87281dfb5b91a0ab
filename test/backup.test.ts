import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Sqlite from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { migrate } from "../src/store/migrate.js";
import { openStore } from "../src/store/store.js";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { call, runCli, spawnServer } from "./support/process.js";

const ADMIN = "backup_admin_token_0123456789abcdef";

describe.each(BACKENDS)("belfry backup on %s", (backend) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
  });
  const dir = mkdtempSync(join(tmpdir(), "belfry-backup-"));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));

  if (backend === "sqlite")
    it("copies the file while the server writes to it: a sound database holding everything acknowledged before", async () => {
      const db = await freshDatabase("sqlite");
      cleanups.push(db.drop);
      const server = await spawnServer({ DATABASE_URL: db.url, BELFRY_ADMIN_TOKEN: ADMIN });
      cleanups.push(() => server.kill9());
      const user = (await call(server.url, "POST", "/admin/v1/users", ADMIN, { email: "bk@example.com" }))
        .json;
      const pay = (id: string) => ({
        id,
        type: "system.payment.received",
        user_id: user.id,
        data: { amount_cents: 1, balance_cents: 1 },
      });
      const before: string[] = [];
      for (let i = 0; i < 50; i++) {
        expect((await call(server.url, "POST", "/admin/v1/events", ADMIN, pay(`before-${i}`))).status).toBe(
          202,
        );
        before.push(`before-${i}`);
      }
      // Writers keep going while the backup runs.
      let writing = true;
      let during = 0;
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; writing; i++) {
          const r = await call(server.url, "POST", "/admin/v1/events", ADMIN, pay(`during-${w}-${i}`));
          expect(r.status).toBe(202);
          during++;
        }
      });
      const copy = join(dir, "copy.db");
      const run = await runCli(["backup", copy], { DATABASE_URL: db.url });
      writing = false;
      await Promise.all(writers);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(copy);
      expect(during).toBeGreaterThan(0);
      expect(readdirSync(dir).filter((f) => f.includes(".partial-"))).toEqual([]);

      const backup = new Sqlite(copy, { readonly: true });
      try {
        expect(backup.pragma("integrity_check", { simple: true })).toBe("ok");
        const ids = new Set(
          (backup.prepare("select idempotency_key as id from events").all() as { id: string }[]).map(
            (r) => r.id,
          ),
        );
        expect(before.filter((id) => !ids.has(id))).toEqual([]);
        // One snapshot: the counters agree with the rows it holds.
        const rows = backup.prepare("select count(*) as n from notifications where user_id = ?").get(user.id);
        const kept = backup
          .prepare("select sum(total) as n from feed_counters where user_id = ?")
          .get(user.id);
        expect(kept).toEqual(rows);
      } finally {
        backup.close();
      }
      // The copy is a Belfry store as it stands.
      const restored = openStore(`file:${copy}`);
      try {
        expect(await migrate(restored)).toEqual([]);
      } finally {
        await restored.close();
      }

      const again = await runCli(["backup", copy], { DATABASE_URL: db.url });
      expect(again.code).toBe(1);
      expect(again.stderr).toContain("already exists");
    }, 60_000);

  if (backend === "postgres")
    it("refuses, pointing to PostgreSQL's own tools", async () => {
      const db = await freshDatabase("postgres");
      cleanups.push(db.drop);
      const target = join(dir, "pg.db");
      const run = await runCli(["backup", target], { DATABASE_URL: db.url });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain("pg_dump");
      expect(existsSync(target)).toBe(false);
    });
});
