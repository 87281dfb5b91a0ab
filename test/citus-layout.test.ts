import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  distributeForCitus,
  KEYED_TABLES,
  REFERENCE_TABLES,
  USER_TABLES,
} from "../src/store/distribute-citus.js";
import { BACKENDS, PG_IS_CITUS } from "./support/backends.js";
import { type Harness, startHarness } from "./support/harness.js";

/**
 * Where the schema lands. On a Citus coordinator (BELFRY_TEST_PG pointing at one), every table
 * is placed by migration alone and one user's rows live on one shard; on plain PostgreSQL
 * distribution does nothing, and the single-shard rule of the SQL capture stands in for Citus.
 */
describe.runIf(BACKENDS.includes("postgres"))("the schema's placement on PostgreSQL", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness("postgres");
    expect(await h.store.sharded()).toBe(PG_IS_CITUS);
  });
  afterAll(() => h?.close());

  it.runIf(!PG_IS_CITUS)(
    "is nowhere but this server on plain PostgreSQL: distribution is a no-op",
    async () => {
      const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_extension where extname = 'citus'`.execute(h.store.db);
      expect(rows[0]?.n).toBe(0);
      expect(await distributeForCitus(h.store)).toEqual([]);
    },
  );

  it.runIf(PG_IS_CITUS)(
    "on Citus: every table placed, nothing busy left on the coordinator, idempotently",
    async () => {
      const { rows } = await sql<{ name: string; method: string; key: string | null; colocation: number }>`
      select logicalrelid::regclass::text as name, partmethod as method,
             column_to_column_name(logicalrelid, partkey) as key, colocationid as colocation
      from pg_dist_partition`.execute(h.store.db);
      const placed = new Map(rows.map((r) => [r.name, r]));
      for (const t of REFERENCE_TABLES) expect(placed.get(t)?.method, t).toBe("n");
      for (const t of USER_TABLES) {
        expect(placed.get(t)?.method, t).toBe("h");
        expect(placed.get(t)?.key, t).toBe("user_id");
        expect(placed.get(t)?.colocation, t).toBe(placed.get(USER_TABLES[0])?.colocation);
      }
      for (const [t, key] of Object.entries(KEYED_TABLES)) {
        expect(placed.get(t)?.method, t).toBe("h");
        expect(placed.get(t)?.key, t).toBe(key);
      }
      // Every table of the schema is placed (the migrator's own bookkeeping aside).
      const { rows: tables } = await sql<{ name: string }>`
      select tablename as name from pg_tables
      where schemaname = 'public' and tablename not like 'kysely_%'`.execute(h.store.db);
      expect(tables.map((t) => t.name).filter((t) => !placed.has(t))).toEqual([]);
      expect(await distributeForCitus(h.store)).toEqual([]);
    },
  );

  it.runIf(PG_IS_CITUS)(
    "on Citus: a user's rows sit on one shard, and users spread over every worker",
    async () => {
      const users = [];
      for (let i = 0; i < 16; i++) users.push(await h.userWithKey());
      for (const u of users) {
        for (let i = 0; i < 3; i++) expect((await h.pay(u.id, `layout-${u.id}-${i}`)).status).toBe(202);
      }
      const { rows: shards } = await sql<{ shard: string; host: string; port: number }>`
      select shard_name as shard, nodename as host, nodeport as port
      from citus_shards where table_name = 'notifications'::regclass`.execute(h.store.db);
      const database = new URL(h.url).pathname.slice(1);
      // Read each shard where it lives: which users' rows it holds.
      const homes = new Map<number, Set<string>>();
      const workersUsed = new Set<number>();
      for (const s of shards) {
        const client = new pg.Client({ host: s.host, port: s.port, user: "postgres", database });
        await client.connect();
        try {
          const { rows } = await client.query<{ user_id: string; n: number }>(
            `select user_id, count(*)::int as n from ${s.shard} group by user_id`,
          );
          for (const r of rows) {
            const id = Number(r.user_id);
            homes.set(id, (homes.get(id) ?? new Set()).add(`${s.port}/${s.shard}`));
            expect(r.n).toBe(3);
            workersUsed.add(s.port);
          }
        } finally {
          await client.end();
        }
      }
      for (const u of users) expect(homes.get(u.id)?.size, `user ${u.id}`).toBe(1);
      expect(workersUsed.size).toBeGreaterThanOrEqual(2);
    },
  );
});
