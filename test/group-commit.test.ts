import { fileURLToPath } from "node:url";
import Sqlite from "better-sqlite3";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SERVING_TIMEOUTS } from "../src/store/store-timeouts.js";
import { BACKENDS, type BackendName, PG_IS_CITUS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, type Response, startHarness } from "./support/harness.js";
import { waitFor } from "./support/receiver.js";

/**
 * Group commit: concurrent single ingests (and, on SQLite, mark-reads) share one transaction,
 * yet each request gets its own answer, only once that transaction has committed. Requests sent
 * together through app.inject reach the gatherer in the same event-loop turn, so each burst
 * below is one group; `belfry_group_commit_size` says how the writes were grouped.
 */

const PAYMENT = "system.payment.received";
const FEED = "/api/v1/me/notifications";

/** A connection of the test's own to the harness's database, beside Belfry's. */
interface Side {
  run(statement: string, params?: unknown[]): Promise<unknown[]>;
  close(): Promise<void>;
}

async function openSide(backend: BackendName, url: string): Promise<Side> {
  if (backend === "sqlite") {
    const db = new Sqlite(url.startsWith("file:") ? url.slice("file:".length) : fileURLToPath(url));
    return {
      run: async (statement, params = []) => {
        const s = db.prepare(statement);
        if (s.reader) return s.all(...params);
        s.run(...params);
        return [];
      },
      close: async () => {
        db.close();
      },
    };
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  // Belfry may be told to drop its connections while this one stays.
  client.on("error", () => {});
  return {
    run: async (statement, params = []) => (await client.query(statement, params)).rows,
    close: () => client.end(),
  };
}

/** The group-size histogram's count, sum and `le` buckets for one operation, from /metrics. */
interface Groups {
  count: number;
  sum: number;
  le: Map<string, number>;
}

describe.each(BACKENDS)("group commit on %s", (backend) => {
  let h: Harness;
  let seq = 0;
  const sides: Side[] = [];
  beforeAll(async () => {
    // The serving lock wait (1 s) on SQLite, so an outage is answered as a server would.
    h = await startHarness(backend, {}, {}, backend === "sqlite" ? { timeouts: SERVING_TIMEOUTS } : {});
  });
  afterEach(async () => {
    for (const side of sides.splice(0)) await side.close();
  });
  afterAll(() => h.close());

  const side = async () => {
    const s = await openSide(backend, h.url);
    sides.push(s);
    return s;
  };
  const id = (tag: string) => `${tag}-${++seq}`;
  const payment = (userId: number, eventId: string, extra: object = {}) => ({
    id: eventId,
    type: PAYMENT,
    user_id: userId,
    data: { amount_cents: 2500, balance_cents: 3140 },
    ...extra,
  });
  const ingest = (body: unknown) => h.request("POST", "/admin/v1/events", { key: ADMIN_TOKEN, body });
  const count = async (key: string) =>
    (await h.request("GET", `${FEED}/unread-count`, { key })).json.count as number;
  const groups = async (operation: string): Promise<Groups> => {
    const r = await h.request("GET", "/metrics", { key: ADMIN_TOKEN });
    expect(r.status).toBe(200);
    const out: Groups = { count: 0, sum: 0, le: new Map() };
    for (const line of r.text.split("\n")) {
      const m = /^belfry_group_commit_size_(count|sum|bucket)\{(.*)\} (\S+)$/.exec(line);
      if (!m?.[2]?.includes(`operation="${operation}"`)) continue;
      const value = Number(m[3]);
      if (m[1] === "count") out.count = value;
      else if (m[1] === "sum") out.sum = value;
      else out.le.set(/le="([^"]+)"/.exec(m[2])?.[1] ?? "", value);
    }
    return out;
  };
  /** Groups committed between two reads, and how many fell in each `le` bucket. */
  const since = (before: Groups, after: Groups) => ({
    groups: after.count - before.count,
    items: after.sum - before.sum,
    atMost: (le: number) => (after.le.get(String(le)) ?? 0) - (before.le.get(String(le)) ?? 0),
  });

  it("gathers a burst of single ingests into one transaction, and answers each on its own", async () => {
    const u = await h.userWithKey();
    const other = await h.userWithKey();
    const dup = payment(u.id, id("dup"));
    const taken = payment(u.id, id("taken"));
    expect((await ingest(dup)).status).toBe(202);
    expect((await ingest(taken)).status).toBe(202);
    const repeated = payment(other.id, id("twice"));
    const fresh = [payment(u.id, id("new")), payment(other.id, id("new")), payment(u.id, id("new"))];

    const before = await groups("ingest");
    const answers = await Promise.all([
      ...fresh.map(ingest),
      ingest(dup), // the same content again: a duplicate
      ingest(payment(u.id, taken.id, { data: { amount_cents: 1, balance_cents: 1 } })), // other content: 409
      ingest(payment(987_654_321, id("nobody"))), // an unknown user: 404
      ingest(repeated), // one id twice in the same group: created once, then a duplicate
      ingest(repeated),
    ]);
    const after = await groups("ingest");
    expect(since(before, after)).toMatchObject({ groups: 1, items: 8 });
    expect(since(before, after).atMost(4)).toBe(0); // the one group held all eight

    for (const [i, e] of fresh.entries()) {
      expect(answers[i]?.status).toBe(202);
      expect(answers[i]?.json).toEqual({ id: e.id, duplicate: false, notifications: 1 });
    }
    expect(answers[3]?.json).toEqual({ id: dup.id, duplicate: true, notifications: 0 });
    expect(isEnvelope(answers[4] as Response, 409, "conflict_error")).toBe(true);
    expect(isEnvelope(answers[5] as Response, 404, "not_found_error")).toBe(true);
    expect([answers[6]?.json, answers[7]?.json]).toEqual([
      { id: repeated.id, duplicate: false, notifications: 1 },
      { id: repeated.id, duplicate: true, notifications: 0 },
    ]);
    // Stored exactly once each: u has dup, taken and two new rows; other has one new and `twice`.
    expect(await count(u.key)).toBe(4);
    expect(await count(other.key)).toBe(2);
    for (const e of [...fresh, dup, repeated]) {
      expect((await ingest(e)).json).toEqual({ id: e.id, duplicate: true, notifications: 0 });
    }
  });

  it("retries a failed group item by item: the one that fails answers 500, its neighbours land", async () => {
    const u = await h.userWithKey();
    // A real failure inside the transaction: the database refuses a feed row titled "explode".
    const db = await side();
    if (backend === "sqlite") {
      await db.run(
        `create trigger explode before insert on notifications when new.title = 'explode'
         begin select raise(abort, 'explode'); end`,
      );
    } else {
      // Citus runs a distributed table's triggers on its shards only when told it may.
      if (PG_IS_CITUS) await db.run("set citus.enable_unsafe_triggers to on");
      await db.run(`create function explode() returns trigger language plpgsql as $$
        begin if new.title = 'explode' then raise exception 'explode'; end if; return new; end $$`);
      await db.run(
        "create trigger explode before insert on notifications for each row execute function explode()",
      );
    }
    try {
      const good = [payment(u.id, id("ok")), payment(u.id, id("ok")), payment(u.id, id("ok"))];
      const bad = payment(u.id, id("bad"), { title: "explode" });
      const before = await groups("ingest");
      const answers = await Promise.all([
        ingest(good[0]),
        ingest(bad),
        ingest(good[1]),
        ingest(payment(987_654_321, id("nobody"))),
        ingest(good[2]),
      ]);
      const after = await groups("ingest");
      expect(answers.map((a) => a.status)).toEqual([202, 500, 202, 404, 202]);
      expect(isEnvelope(answers[1] as Response, 500, "api_error")).toBe(true);
      for (const [i, e] of [0, 2, 4].entries()) {
        expect(answers[e]?.json).toEqual({ id: good[i]?.id, duplicate: false, notifications: 1 });
      }
      // The group of five rolled back; the four that could commit did, one transaction each.
      expect(since(before, after)).toMatchObject({ groups: 4, items: 4 });
      expect(since(before, after).atMost(1)).toBe(4);
      expect(await count(u.key)).toBe(3);

      // The failed event left nothing behind: once the database takes it, it is new.
      await db.run(backend === "sqlite" ? "drop trigger explode" : "drop trigger explode on notifications");
      expect((await ingest(bad)).json).toEqual({ id: bad.id, duplicate: false, notifications: 1 });
      expect(await count(u.key)).toBe(4);
    } finally {
      if (backend === "sqlite") await db.run("drop trigger if exists explode");
      else {
        await db.run("drop trigger if exists explode on notifications");
        await db.run("drop function if exists explode()");
      }
    }
  });

  it.skipIf(backend === "sqlite")(
    "runs groups side by side on PostgreSQL: one waiting on a lock holds up no other",
    async () => {
      const blocked = await h.userWithKey();
      const free = await h.userWithKey();
      const db = await side();
      // Another transaction holds the feed of one user: a group writing to it waits.
      await db.run("begin");
      await db.run("select version from feed_states where user_id = $1 for update", [blocked.id]);
      let held = true;
      const waiting = ingest(payment(blocked.id, id("held"))).finally(() => {
        held = false;
      });
      const lockWaits = PG_IS_CITUS
        ? "select count(*)::int as n from citus_lock_waits"
        : "select count(*)::int as n from pg_locks where not granted";
      await waitFor(
        async () => ((await db.run(lockWaits))[0] as { n: number }).n > 0,
        15_000,
        "the lock wait",
      );

      // Later writes go on in a group of their own, committed while the first still waits.
      const answers = await Promise.all([
        ingest(payment(free.id, id("free"))),
        ingest(payment(free.id, id("free"))),
      ]);
      expect(answers.map((a) => a.status)).toEqual([202, 202]);
      expect(await count(free.key)).toBe(2);
      expect(held).toBe(true);

      await db.run("commit");
      const answer = await waiting;
      expect(answer.status).toBe(202);
      expect(await count(blocked.key)).toBe(1);
    },
  );

  it("answers a group 503 when the store goes away, and gathers again once it is back", async () => {
    const u = await h.userWithKey();
    const db = await side();
    const burst = () => Array.from({ length: 6 }, () => payment(u.id, id("outage")));
    const first = burst();
    const later = burst();
    let answers: Response[];
    if (backend === "sqlite") {
      // Another process holds the write lock for longer than a write waits for it.
      await db.run("begin immediate");
      answers = await Promise.all(first.map(ingest));
      // The lock counts as held now: a write tries once and is refused at once.
      answers.push(...(await Promise.all(later.map(ingest))));
      await db.run("commit");
    } else {
      // The group waits for a feed lock this connection holds; meanwhile more requests queue
      // behind it; then the server drops Belfry's connections, as a restart would.
      const watcher = await side();
      await db.run("begin");
      await db.run("select user_id from feed_states where user_id = $1 for update", [u.id]);
      const pending = Promise.all(first.map(ingest));
      await waitFor(
        async () =>
          Number(
            (
              (await watcher.run(
                // On Citus the group waits on the worker holding the user's shard.
                `select count(*) as n from ${PG_IS_CITUS ? "citus_stat_activity" : "pg_stat_activity"} where datname = current_database() and wait_event_type = 'Lock'`,
              )) as { n: string }[]
            )[0]?.n,
          ) > 0,
        15_000,
        "the group to wait for the feed lock",
      );
      const queued = Promise.all(later.map(ingest));
      await db.run(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and pid <> $1",
        [((await watcher.run("select pg_backend_pid() as pid")) as { pid: number }[])[0]?.pid],
      );
      answers = [...(await pending), ...(await queued)];
      await db.run("commit");
    }
    for (const a of answers) {
      expect(isEnvelope(a, 503, "unavailable_error"), a.text).toBe(true);
      expect(a.headers["retry-after"]).toBe("1");
    }

    // Back: the next requests are served (a dropped pooled connection may cost one more 503),
    // and a burst is one group again.
    await waitFor(async () => (await ingest(payment(u.id, id("probe")))).status === 202, 15_000, "a 202");
    const before = await groups("ingest");
    const again = await Promise.all(first.map(ingest));
    expect(again.map((a) => a.json)).toEqual(
      first.map((e) => ({ id: e.id, duplicate: false, notifications: 1 })),
    );
    expect(since(before, await groups("ingest"))).toMatchObject({ groups: 1, items: first.length });
    // Nothing answered 503 was stored: `later` is new too.
    expect((await Promise.all(later.map(ingest))).map((a) => a.json.duplicate)).toEqual(
      later.map(() => false),
    );
    expect(await count(u.key)).toBe(1 + first.length + later.length);
  });

  it("gathers concurrent mark-reads on SQLite (each answered on its own) and not on PostgreSQL", async () => {
    const u = await h.userWithKey();
    const other = await h.userWithKey();
    for (let i = 0; i < 4; i++) expect((await ingest(payment(u.id, id("m")))).status).toBe(202);
    expect((await ingest(payment(other.id, id("m")))).status).toBe(202);
    const rows = (await h.request("GET", FEED, { key: u.key })).json.items as { id: number }[];
    const [a, b, c, d] = rows.map((r) => r.id);
    const otherRow = (await h.request("GET", FEED, { key: other.key })).json.items[0].id as number;
    const earlier = await h.request("POST", `${FEED}/${d}/mark-read`, { key: u.key });
    expect(earlier.status).toBe(200);

    const before = await groups("mark_read");
    const mark = (key: string, row: number | undefined) =>
      h.request("POST", `${FEED}/${row}/mark-read`, { key });
    const answers = await Promise.all([
      mark(u.key, a),
      mark(u.key, b),
      mark(other.key, otherRow),
      mark(u.key, otherRow), // another user's row: 404, decided before any write
      mark(u.key, d), // read already: its first read_at
      mark(u.key, c),
      mark(u.key, c), // twice at once: one flips it, both answer the same read_at
    ]);
    const after = await groups("mark_read");
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 404, 200, 200, 200]);
    expect(answers[4]?.json.read_at).toBe(earlier.json.read_at);
    expect(answers[5]?.json.read_at).toBe(answers[6]?.json.read_at);
    expect(answers.filter((r) => r.status === 200).map((r) => r.json.id)).toEqual([a, b, otherRow, d, c, c]);
    if (backend === "sqlite") {
      // The five unread marks shared one transaction (the 404 and the read row never queued).
      expect(since(before, after)).toMatchObject({ groups: 1, items: 5 });
    } else {
      expect(since(before, after)).toMatchObject({ groups: 0, items: 0 });
    }
    expect(await count(u.key)).toBe(0);
    expect(await count(other.key)).toBe(0);
  });
});
