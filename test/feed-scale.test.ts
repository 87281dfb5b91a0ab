import { CompiledQuery, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "../src/deps.js";
import { createDeps } from "../src/deps.js";
import { readFeedSummary } from "../src/feed/feed-state.js";
import { markAllRead, markRead } from "../src/feed/mark-read.js";
import { type FeedFilter, listNotifications } from "../src/feed/notifications.js";
import { authenticateWith } from "../src/identity/authenticate.js";
import { pageFromRows, pageRead, withUnreadCount } from "../src/identity/credential-reads.js";
import { createPersonalKey } from "../src/identity/keys.js";
import { createUser } from "../src/identity/users.js";
import { ingestEvent } from "../src/ingest/ingest.js";
import { BACKENDS, openTestStore, PG_IS_CITUS, type TestStore } from "./support/backends.js";

/**
 * The unread count and every list total come from kept counters, and page 1 reads only
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
  let bearer: string;
  const captured: CompiledQuery[] = [];
  const executed: string[] = [];

  beforeAll(async () => {
    t = await openTestStore(backend, {
      log: (event) => {
        // Reads only: PostgreSQL list reads run in a read-only snapshot transaction (begin/commit).
        if (event.level !== "query") return;
        executed.push(event.query.sql);
        if (/^\s*select/i.test(event.query.sql)) captured.push(event.query);
      },
    });
    deps = createDeps(t.store);
    userId = (await createUser(deps, { email: "big@example.com" })).id;
    bearer = `Bearer ${(await createPersonalKey(deps, userId, { name: "poller" })).key}`;
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
    // Citus analyzes a distributed table's shards when the table is named.
    if (backend === "postgres" && PG_IS_CITUS)
      await sql`analyze notifications, feed_states, feed_counters, feed_read_marks`.execute(t.store.db);
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

  const STATE_TABLES = ["feed_states", "s", "feed_counters", "c"];
  const KEY_TABLES = ["api_keys", "k"];
  const unreadCount = async () => {
    const { unread, version } = await readFeedSummary(t.store.db, userId);
    return { count: unread, version };
  };

  it("answers unread-count with the key, from the feed state and counter rows alone", async () => {
    const plans = await plansOf(() => authenticateWith(deps, bearer, withUnreadCount));
    expect(plans).toHaveLength(1);
    expect(plans[0]!.scans.every((s) => [...KEY_TABLES, ...STATE_TABLES].includes(s.table))).toBe(true);
    const [row] = (await authenticateWith(deps, bearer, withUnreadCount)).rows;
    expect(row!.unread).toBe((await unreadCount()).count);
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
      expect(plans).toHaveLength(2);
      expect(plans[0]!.scans.every((s) => STATE_TABLES.includes(s.table))).toBe(true);
      const page = plans[1]!;
      const rows = page.scans.filter((s) => s.table === "notifications");
      expect(rows).toHaveLength(1);
      expect(indexes).toContain(rows[0]!.index);
      // The only other table: mark-all-read marks, probed per returned row (by primary key; with
      // a table this small PostgreSQL may just read it).
      for (const s of page.scans.filter((s) => s.table !== "notifications")) {
        expect(["m", "feed_read_marks"]).toContain(s.table);
        if (backend === "sqlite") expect(s.index).toMatch(/feed_read_marks|PRIMARY KEY/);
      }
      expect(page.sorts).toBe(false);
      // PostgreSQL reports what the scan actually read: the 50 rows returned, and at most as many
      // again skipped by a filter the chosen index does not cover.
      if (backend === "postgres") {
        expect(rows[0]!.rowsRead).toBeGreaterThanOrEqual(50);
        expect(rows[0]!.rowsRead).toBeLessThanOrEqual(100);
      }
    },
  );

  // On PostgreSQL a page is read with the key in one statement (read=true aside): the same index,
  // no sort, and only the rows returned, whatever the feed's size; the same page as two statements.
  it.each(filters.filter(([, f]) => f.read !== true))(
    "reads the key and page 1 (%s) in one statement where round trips cost",
    async (_name, filter, indexes) => {
      const full = { ...filter, page: 1, pageSize: 50 };
      const read = pageRead(deps, full);
      if (backend === "sqlite") return expect(read).toBeUndefined();
      const plans = await plansOf(() => authenticateWith(deps, bearer, read!));
      expect(plans).toHaveLength(1);
      const rows = plans[0]!.scans.filter((s) => s.table === "notifications");
      expect(rows).toHaveLength(1);
      expect(indexes).toContain(rows[0]!.index);
      expect(plans[0]!.sorts).toBe(false);
      expect(rows[0]!.rowsRead).toBeGreaterThanOrEqual(50);
      expect(rows[0]!.rowsRead).toBeLessThanOrEqual(100);
      const fused = pageFromRows((await authenticateWith(deps, bearer, read!)).rows, 0, full);
      const { version: _, ...twoStatements } = await listNotifications(deps, userId, full);
      expect({ ...fused, version: 0 }).toEqual({ ...twoStatements, version: 0 });
    },
  );

  // The tests below run in order after the ones above: they mark everything read.
  it("marks 100,000 unread rows read in constant work", async () => {
    const before = await unreadCount();
    expect(before.count).toBeGreaterThan(50_000);
    executed.length = 0;
    const result = await markAllRead(deps, userId);
    expect(result).toEqual({ marked_read: before.count });
    // No statement touches the notifications themselves: the work does not grow with the feed.
    expect(executed.length).toBeLessThanOrEqual(8);
    expect(executed.filter((q) => q.includes('"notifications"'))).toEqual([]);
    expect(await unreadCount()).toEqual({ count: 0, version: before.version + 1 });
    expect(await markAllRead(deps, userId)).toEqual({ marked_read: 0 });
    const unread = await listNotifications(deps, userId, { read: false, page: 1, pageSize: 50 });
    expect(unread).toMatchObject({ items: [], total: 0 });
    const read = await listNotifications(deps, userId, { read: true, page: 1, pageSize: 50 });
    expect(read.total).toBe(ROWS + 20);
    expect(read.items.every((n) => n.read_at !== null)).toBe(true);
  });

  it("keeps read_at exact: a row's own, else the mark-all-read that covered it", async () => {
    const [row] = (await listNotifications(deps, userId, { page: 1, pageSize: 1 })).items;
    const again = await markRead(deps, userId, row!.id);
    expect(again.read_at).toBe(row!.read_at);
    const own = await t.store.db
      .selectFrom("notifications")
      .select(["id", "read_at"])
      .where("user_id", "=", userId)
      .where("read_at", "is not", null)
      .limit(1)
      .executeTakeFirstOrThrow();
    const { items } = await listNotifications(deps, userId, { page: 1, pageSize: 200 });
    const mark = await t.store.db
      .selectFrom("feed_read_marks")
      .select("at")
      .where("user_id", "=", userId)
      .executeTakeFirstOrThrow();
    for (const n of items) {
      const stored = await t.store.db
        .selectFrom("notifications")
        .select("read_at")
        .where("user_id", "=", userId)
        .where("id", "=", n.id)
        .executeTakeFirstOrThrow();
      expect(n.read_at).toBe(new Date((stored.read_at ?? mark.at) * 1000).toISOString().replace(".000", ""));
    }
    expect(own.read_at).not.toBeNull();
  });

  it("serves unread page 1 after mark-all-read reading only the new rows", async () => {
    for (let i = 0; i < 3; i++) {
      await ingestEvent(deps, {
        id: `after-${i}`,
        type: PAYMENT,
        user_id: userId,
        data: { amount_cents: 1, balance_cents: 1 },
      });
    }
    const page = await listNotifications(deps, userId, { read: false, page: 1, pageSize: 50 });
    expect(page.total).toBe(3);
    expect(page.items.map((n) => n.read_at)).toEqual([null, null, null]);
    const plans = await plansOf(() =>
      listNotifications(deps, userId, { read: false, page: 1, pageSize: 50 }),
    );
    const rows = plans[1]!.scans.find((s) => s.table === "notifications")!;
    // The unread index in page order, or (PostgreSQL's pick here) the id range above the mark,
    // which holds the unread rows and other users' newer rows (one here): a handful, not 100,000.
    expect(["notifications_feed_unread", "notifications_pkey"]).toContain(rows.index);
    if (backend === "postgres") expect(rows.rowsRead).toBeLessThanOrEqual(4);
    const flipped = await markRead(deps, userId, page.items[0]!.id);
    expect(await unreadCount()).toMatchObject({ count: 2 });
    expect(
      (await listNotifications(deps, userId, { read: false, page: 1, pageSize: 50 })).items.map((n) => n.id),
    ).not.toContain(flipped.id);
  });

  /** Runs `fn`, then EXPLAINs every query it ran. */
  async function plansOf(fn: () => Promise<unknown>): Promise<Plan[]> {
    captured.length = 0;
    await fn();
    // On Citus a credential's owner is read first (its own table alone), so the read that
    // follows names its shard; that statement reads no feed.
    const queries = captured.filter(
      (q) => !(PG_IS_CITUS && /^select "user_id" from "(api_keys|sessions)" where/.test(q.sql)),
    );
    return Promise.all(queries.map((q) => explain(q)));
  }

  async function explain(query: CompiledQuery): Promise<Plan> {
    if (backend === "sqlite") {
      const { rows } = await t.store.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]),
      );
      const details = rows.map((r) => r.detail);
      return {
        scans: details.flatMap((d) => {
          const m =
            /^(?:SEARCH|SCAN) (\w+)(?: USING (?:(?:COVERING )?INDEX (\w+)|(INTEGER PRIMARY KEY|PRIMARY KEY)))?/.exec(
              d,
            );
          return m ? [{ table: m[1]!, index: m[2] ?? m[3] }] : [];
        }),
        sorts: details.some((d) => d.includes("TEMP B-TREE")),
      };
    }
    const { rows } = await t.store.db.executeQuery<{ "QUERY PLAN": PgNode[] }>(
      CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]),
    );
    const nodes = flatten(rows[0]!["QUERY PLAN"][0]!.Plan);
    // On Citus every one of these reads is one user's: it runs on that user's shard alone.
    if (PG_IS_CITUS) {
      const tasks = nodes.flatMap((n) => n["Distributed Query"]?.Job["Task Count"] ?? []);
      expect(tasks, query.sql).toEqual([1]);
    }
    const scans = nodes.filter((n) => n["Relation Name"]);
    return {
      scans: scans.map((n) => ({
        table: unsharded(n["Relation Name"]!),
        // A bitmap scan names its index on the child that reads it.
        index: indexOf(n) && unsharded(indexOf(n) as string),
        rowsRead: n["Actual Rows"] + (n["Rows Removed by Filter"] ?? 0),
      })),
      // A sort of the feed rows (not of the marks subquery's single probe).
      sorts: nodes.some(
        (n) =>
          n["Node Type"].includes("Sort") && flatten(n).some((c) => c["Relation Name"] === "notifications"),
      ),
    };
  }
});

interface Plan {
  /** Each table access: its table (or alias), the index used, and on PostgreSQL the rows read. */
  scans: { table: string; index?: string | undefined; rowsRead?: number }[];
  sorts: boolean;
}

interface PgNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows": number;
  "Rows Removed by Filter"?: number;
  Plans?: PgNode[];
  Plan: PgNode;
  /** Citus: a distributed scan's tasks, one per shard it runs on. */
  "Distributed Query"?: { Job: { "Task Count": number } };
}

/**
 * Every plan node under `n`: its children, and on Citus the plans each shard ran (a distributed
 * scan's tasks carry their remote plans, which EXPLAIN ANALYZE reads back).
 */
const flatten = (n: unknown): PgNode[] => {
  if (Array.isArray(n)) return n.flatMap(flatten);
  if (n === null || typeof n !== "object") return [];
  return [...("Node Type" in n ? [n as PgNode] : []), ...Object.values(n).flatMap(flatten)];
};

/** The index a scan reads by, if any (a bitmap heap scan's is on its bitmap index scan). */
const indexOf = (n: PgNode): string | undefined =>
  n["Index Name"] ??
  flatten(n.Plans ?? []).find((c) => c["Node Type"] === "Bitmap Index Scan")?.["Index Name"];

/** A table's or index's name without the shard's suffix Citus gives it on a worker (`_102008`). */
const unsharded = (name: string) => (PG_IS_CITUS ? name.replace(/_\d{6,}$/, "") : name);

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
