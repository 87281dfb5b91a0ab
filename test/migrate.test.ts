import { afterAll, describe, expect, it } from "vitest";
import { migrate } from "../src/store/migrate.js";
import { openStore } from "../src/store/store.js";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { runCli } from "./support/process.js";

describe.each(BACKENDS)("migrations on %s", (backend) => {
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const drop of drops) await drop();
  });

  it("are safe when several processes start at once, and idempotent", async () => {
    const db = await freshDatabase(backend);
    drops.push(db.drop);
    const runs = await Promise.all(
      Array.from({ length: 4 }, () => runCli(["migrate"], { DATABASE_URL: db.url })),
    );
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    expect(runs.filter((r) => r.stdout.includes("Applied: 0001-initial"))).toHaveLength(1);
    const store = openStore(db.url);
    try {
      expect(await migrate(store)).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
