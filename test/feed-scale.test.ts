import { CompiledQuery, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "../src/deps.js";
import { createDeps } from "../src/deps.js";
import { ingestEvent } from "../src/events/ingest.js";
import { markAllRead, markRead } from "../src/feed/mark-read.js";
import { type FeedFilter, listNotifications, unreadCount } from "../src/feed/notifications.js";
import { createUser } from "../src/identity/users.js";
import { BACKENDS, openTestStore, type TestStore } from "./support/backends.js";

/**
 * SPEC §3: the unread count and every list total come from kept counters, and page 1 reads only
 * the rows it returns. With 100,000 rows for one user this suite EXPLAINs the exact SQL the
 * feed functions run (captured from Kysely's log) and checks which tables and indexes it touches.
 */
const ROWS = 100_000;
const PAYMENT = "system.payment.received";
const LOW = "system.balance.notify.dispatched";

describe.each(BACKENDS)("feed at 100,000 rows on %s", (backend) => {
  let t: TestStore;
  let deps: Deps;
  let userId: number;
  const captured: CompiledQuery[] = [];

  beforeAll(async () => {
    t = await openTestStore(backend, {
      log: (event) => {
        // Reads only: PostgreSQL list reads run in a read-only snapshot transaction (begin/commit).
        if (event.level === "query" && /^\s*select/i.test(event.query.sql)) captured.push(event.query);
      },
    });
    deps = createDeps(t.store);
    userId = (await createUser(deps, { email: "big@example.com" })).id;
    const other = (await createUser(deps, { email: "small@example.com" })).id;
    await seed(t, userId);
    // Some rows through the real paths, for this user and another, so counters move as in life.
    for (let i = 0; i < 20; i++) {
      for (const uid of [userId, other]) {
        await ingestEvent(deps, {
          id: `real-${uid}-${i}`,
          type: i % 2 ? PAYMENT : LOW,
          user_id: uid,
          data: { amount_cents: 100, balance_cents: 1, threshold_cents: 5 },
        });
      }
    }
    await markAllRead(deps, other);
    const page = await listNotifications(deps, userId, { page: 1, pageSize: 3, read: false });
    for (const n of page.items) await markRead(deps, userId, n.id);
    await sql`analyze`.execute(t.store.db);
  }, 120_000);
  afterAll(() => t.drop());

  it("keeps counters equal to the rows, per type and read state", async () => {
    const actual = await t.store.db
      .selectFrom("notifications")
      .select([
        "type",
        (eb) => eb.fn.countAll<number>().as("total"),
        sql<number>`sum(case when read_at is null then 1 else 0 end)`.as("unread"),
      ])
      .where("user_id", "=", userId)
      .groupBy("type")
      .orderBy("type")
      .execute();
    const counters = await t.store.db
      .selectFrom("feed_counters")
      .select(["type", "total", "unread"])
      .where("user_id", "=", userId)
      .orderBy("type")
      .execute();
    expect(counters).toEqual(
      actual.map((r) => ({ type: r.type, total: Number(r.total), unread: Number(r.unread) })),
    );
    expect(counters.reduce((s, c) => s + c.total, 0)).toBe(ROWS + 20);
  });

  it("answers unread-count from the counter rows alone", async () => {
    const plans = await plansOf(() => unreadCount(deps, userId));
    expect(plans).toHaveLength(1);
    expect(plans[0]!.tables).toEqual(["feed_counters"]);
  });

  // Each filter has an index in page order. PostgreSQL may pick a broader one that is in page order
  // too when the filter keeps most rows (2 of 3 rows are payments), so its rows read are bounded.
  const filters: [string, Omit<FeedFilter, "page" | "pageSize">, string[]][] = [
    ["no filter", {}, ["notifications_feed"]],
    ["unread", { read: false }, ["notifications_feed_unread"]],
    ["read", { read: true }, ["notifications_feed_read"]],
    ["type", { type: LOW }, ["notifications_feed_type"]],
    [
      "unread + type",
      { read: false, type: LOW },
      ["notifications_feed_type_unread", "notifications_feed_unread"],
    ],
    [
      "read + type",
      { read: true, type: PAYMENT },
      ["notifications_feed_type_read", "notifications_feed_read"],
    ],
  ];
  it.each(filters)(
    "serves page 1 (%s) from counters and an index, without sorting",
    async (_name, filter, indexes) => {
      const plans = await plansOf(() =>
        listNotifications(deps, userId, { ...filter, page: 1, pageSize: 50 }),
      );
      expect(plans.map((p) => p.tables)).toEqual([["feed_counters"], ["notifications"]]);
      const page = plans[1]!;
      expect(page.indexes).toHaveLength(1);
      expect(indexes).toContain(page.indexes[0]);
      expect(page.sorts).toBe(false);
      // PostgreSQL reports what the scan actually read: the 50 rows returned, and at most as many
      // again skipped by a filter the chosen index does not cover.
      if (backend === "postgres") {
        expect(page.rowsRead).toBeGreaterThanOrEqual(50);
        expect(page.rowsRead).toBeLessThanOrEqual(100);
      }
    },
  );

  /** Runs `fn`, then EXPLAINs every query it ran. */
  async function plansOf(fn: () => Promise<unknown>): Promise<Plan[]> {
    captured.length = 0;
    await fn();
    const queries = [...captured];
    return Promise.all(queries.map((q) => explain(q)));
  }

  async function explain(query: CompiledQuery): Promise<Plan> {
    if (backend === "sqlite") {
      const { rows } = await t.store.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]),
      );
      const details = rows.map((r) => r.detail);
      return {
        tables: [...new Set(details.flatMap((d) => /^(?:SEARCH|SCAN) (\w+)/.exec(d)?.[1] ?? []))],
        indexes: details.flatMap((d) => / USING (?:COVERING )?INDEX (\w+)/.exec(d)?.[1] ?? []),
        sorts: details.some((d) => d.includes("TEMP B-TREE")),
        rowsRead: undefined,
      };
    }
    const { rows } = await t.store.db.executeQuery<{ "QUERY PLAN": PgNode[] }>(
      CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]),
    );
    const nodes = flatten(rows[0]!["QUERY PLAN"][0]!.Plan);
    const scans = nodes.filter((n) => n["Relation Name"]);
    return {
      tables: [...new Set(scans.map((n) => n["Relation Name"]!))],
      indexes: scans.flatMap((n) => n["Index Name"] ?? []),
      sorts: nodes.some((n) => n["Node Type"].includes("Sort")),
      rowsRead: scans.reduce((s, n) => s + n["Actual Rows"] + (n["Rows Removed by Filter"] ?? 0), 0),
    };
  }
});

interface Plan {
  tables: string[];
  indexes: string[];
  sorts: boolean;
  rowsRead: number | undefined;
}

interface PgNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows": number;
  "Rows Removed by Filter"?: number;
  Plans?: PgNode[];
  Plan: PgNode;
}

const flatten = (n: PgNode): PgNode[] => [n, ...(n.Plans ?? []).flatMap(flatten)];

/**
 * Inserts ROWS rows for one user in one statement (two types, every other row read) and sets
 * the counters to match. Only this bulk seed writes counters by hand; everything else in the
 * suite goes through the real code paths.
 */
async function seed(t: TestStore, userId: number): Promise<void> {
  const { db, dialect } = t.store;
  const event = await db
    .insertInto("events")
    .values({
      public_id: "evt_seed",
      type: PAYMENT,
      user_id: userId,
      data: "{}",
      occurred_at: 0,
      created_at: 0,
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  const series =
    dialect === "postgres"
      ? sql`select n from generate_series(1, ${ROWS}) as n`
      : sql`with recursive seq(n) as (select 1 union all select n + 1 from seq where n < ${ROWS}) select n from seq`;
  await sql`
    insert into notifications (user_id, event_id, type, title, body, link, created_at, read_at)
    select ${userId}, ${event.id}, case when n % 3 = 0 then ${LOW} else ${PAYMENT} end, 't', 'b', '/billing',
           1700000000 + n, case when n % 2 = 0 then 1700000000 + n else null end
    from (${series}) as s`.execute(db);
  await sql`
    insert into feed_counters (user_id, type, total, unread)
    select user_id, type, count(*), sum(case when read_at is null then 1 else 0 end)
    from notifications where user_id = ${userId} group by user_id, type`.execute(db);
}
