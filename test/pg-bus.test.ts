import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BusMessage, emptyChanges } from "../src/bus/change-bus.js";
import { pgBus } from "../src/bus/pg-bus.js";
import { BACKENDS, freshDatabase } from "./support/backends.js";

describe.runIf(BACKENDS.includes("postgres"))("the PostgreSQL change bus", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await freshDatabase("postgres");
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });

  const until = async (messages: BusMessage[], test: (m: BusMessage) => boolean, what: string) => {
    for (let i = 0; i < 250 && !messages.some(test); i++) await sleep(20);
    expect(messages.some(test), what).toBe(true);
  };

  it("tells subscribers to resync once its first LISTEN is ready (changes before it reached nobody)", async () => {
    const bus = pgBus(db.url, pool);
    const heard: BusMessage[] = [];
    try {
      bus.subscribe((m) => heard.push(m));
      // A change committed and announced by another instance before this one listens.
      const other = pgBus(db.url, pool);
      const changes = emptyChanges();
      changes.feeds.add(7);
      other.publish(changes);
      await other.close();
      await until(heard, (m) => "resync" in m, "a resync after the first LISTEN");
    } finally {
      await bus.close();
    }
  });

  it("carries another instance's changes once listening, and resyncs after a lost connection", async () => {
    const a = pgBus(db.url, pool);
    const b = pgBus(db.url, pool);
    const heard: BusMessage[] = [];
    try {
      a.subscribe((m) => heard.push(m));
      await until(heard, (m) => "resync" in m, "listening");
      const changes = emptyChanges();
      changes.feeds.add(42);
      changes.reads.set(42, [1, 2]);
      changes.revokedKeys.add(9);
      b.publish(changes);
      await until(heard, (m) => "changes" in m && m.changes.feeds.has(42), "the change from b");
      const got = heard.find((m) => "changes" in m && m.changes.feeds.has(42));
      expect(got && "changes" in got && got.changes.reads.get(42)).toEqual([1, 2]);
      expect(got && "changes" in got && [...got.changes.revokedKeys]).toEqual([9]);

      heard.length = 0;
      await pool.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'belfry-listener' and datname = current_database()",
      );
      await until(heard, (m) => "resync" in m, "a resync after reconnecting");
    } finally {
      await a.close();
      await b.close();
    }
  });
});
