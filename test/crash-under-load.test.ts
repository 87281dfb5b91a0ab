import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { iso } from "./support/iso.js";
import { call, type ServerProcess, spawnServer } from "./support/process.js";
import { proofSeed, reportProof } from "./support/proof-seed.js";

/**
 * kill -9 under concurrent load: 20 clients ingest (single and batch) for several users; at a
 * seeded moment — after a seeded number of acknowledged events, while the other clients' requests
 * are in flight — the server is killed with SIGKILL, restarted on the same database, and checked:
 * every acknowledged event is stored exactly once, nothing that was never sent appears, a batch
 * lands whole or not at all, counts equal rows, and re-posting any acknowledged id is a
 * duplicate. Then the clients carry on for the next round.
 *
 * Concurrent single ingests share transactions (group commit): just before each kill the server's
 * `belfry_group_commit_size` must show groups of more than one, so the kill lands while
 * gathering is active.
 *
 * Each event's title override is its id, so a feed row names the event it came from.
 */

const ADMIN = "crash_admin_token_0123456789abcdef";
const SEED = proofSeed(20_260_522);
const ROUNDS = 3;
const CLIENTS = 20;
const USERS = 5;
/** Each client's planned requests per round; the kill comes long before they run out. */
const OPS_PER_CLIENT = 40;
/** The kill comes once this many events (seeded within the range) have been acknowledged. */
const KILL_AFTER = { min: 60, max: 240 };
/** Back-dated events are placed before this instant (2026-01-01T00:00:00Z). */
const BASE = 1_767_225_600;

interface PlannedEvent {
  user: number;
  payment: boolean;
  amount: number;
  balance: number;
  backdate: number | undefined;
}
interface PlannedOp {
  batch: boolean;
  events: PlannedEvent[];
}

const eventArb: fc.Arbitrary<PlannedEvent> = fc.record({
  user: fc.nat({ max: USERS - 1 }),
  payment: fc.boolean(),
  amount: fc.integer({ min: 1, max: 50_000_000 }),
  balance: fc.integer({ min: -5_000_000, max: 50_000_000 }),
  backdate: fc.option(fc.integer({ min: 0, max: 400 * 86_400 }), { nil: undefined, freq: 3 }),
});
const opArb: fc.Arbitrary<PlannedOp> = fc.oneof(
  { weight: 3, arbitrary: eventArb.map((e) => ({ batch: false, events: [e] })) },
  {
    weight: 1,
    arbitrary: fc.array(eventArb, { minLength: 2, maxLength: 25 }).map((events) => ({ batch: true, events })),
  },
);
const roundArb = fc.record({
  killAfter: fc.integer(KILL_AFTER),
  clients: fc.array(fc.array(opArb, { minLength: OPS_PER_CLIENT, maxLength: OPS_PER_CLIENT }), {
    minLength: CLIENTS,
    maxLength: CLIENTS,
  }),
});

/** An event as sent: its body, and the request (single or batch) that carried it. */
interface Sent {
  id: string;
  userId: number;
  type: string;
  body: Record<string, unknown>;
  createdAt: string | undefined;
  group: string;
}

interface Row {
  id: number;
  type: string;
  title: string;
  read_at: string | null;
  created_at: string;
}

function toSent(e: PlannedEvent, id: string, userId: number, group: string): Sent {
  const type = e.payment ? "system.payment.received" : "system.balance.notify.dispatched";
  const data = e.payment
    ? { amount_cents: e.amount, balance_cents: e.balance }
    : { balance_cents: e.balance, threshold_cents: e.amount };
  const occurredAt = e.backdate === undefined ? undefined : iso(BASE - e.backdate);
  const body = { id, type, user_id: userId, data, title: id, ...(occurredAt && { occurred_at: occurredAt }) };
  return { id, userId, type, body, createdAt: occurredAt, group };
}

async function post(url: string, path: string, body: unknown) {
  const r = await fetch(url + path, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  // The body must arrive whole for the answer to count as received.
  const text = await r.text();
  return { status: r.status, text };
}

/** Single-ingest transactions so far, and how many of them carried more than one event. */
async function gathered(url: string): Promise<{ groups: number; shared: number }> {
  const r = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const text = await r.text();
  const read = (pattern: string) =>
    Number(new RegExp(`^belfry_group_commit_size_${pattern} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
  const groups = read('count\\{operation="ingest"\\}');
  return { groups, shared: groups - read('bucket\\{le="1",operation="ingest"\\}') };
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

describe.each(BACKENDS)("kill -9 under concurrent ingest load on %s", (backend) => {
  const drops: (() => Promise<void>)[] = [];
  const servers: ServerProcess[] = [];
  afterAll(async () => {
    for (const s of servers) s.proc.kill("SIGKILL");
    for (const drop of drops) await drop();
  });

  it(`keeps every acknowledged event exactly once through ${ROUNDS} kills`, async () => {
    const db = await freshDatabase(backend);
    drops.push(db.drop);
    const env = { DATABASE_URL: db.url, BELFRY_ADMIN_TOKEN: ADMIN, BELFRY_WEBHOOK_WORKER: "false" };
    let server = await spawnServer(env);
    servers.push(server);

    const users: { id: number; key: string }[] = [];
    for (let i = 0; i < USERS; i++) {
      const u = await call(server.url, "POST", "/admin/v1/users", ADMIN, { email: `load${i}@example.com` });
      const k = await call(server.url, "POST", `/admin/v1/users/${u.json.id}/keys`, ADMIN, { name: "k" });
      users.push({ id: u.json.id, key: k.json.key });
    }

    const attempted = new Map<string, Sent>();
    const acked = new Set<string>();
    let requests = 0;
    let inFlightAtKills = 0;
    let unavailable = 0;
    let sharedCommits = 0;

    /** Every row of a user's feed, page by page, with the unread count. */
    async function feedOf(url: string, key: string) {
      const rows: Row[] = [];
      let total = -1;
      for (let page = 1; total === -1 || rows.length < total; page++) {
        const r = await call(url, "GET", `/api/v1/me/notifications?page=${page}&page_size=200`, key);
        expect(r.status).toBe(200);
        if (total !== -1) expect(r.json.total, "total changed between pages").toBe(total);
        total = r.json.total;
        if (r.json.items.length === 0) break;
        rows.push(...r.json.items);
      }
      const count = (await call(url, "GET", "/api/v1/me/notifications/unread-count", key)).json.count;
      return { rows, total, count };
    }

    /** The stored state agrees with what was acknowledged; returns the ids stored. */
    async function verify(url: string, when: string): Promise<Set<string>> {
      const stored = new Set<string>();
      for (const user of users) {
        const { rows, total, count } = await feedOf(url, user.key);
        const titles = rows.map((r) => r.title);
        expect(new Set(titles).size, `${when}: an event stored twice for user ${user.id}`).toBe(
          titles.length,
        );
        expect(total, `${when}: list total of user ${user.id}`).toBe(rows.length);
        expect(count, `${when}: unread count of user ${user.id}`).toBe(rows.length);
        for (let i = 1; i < rows.length; i++) {
          const [a, b] = [rows[i - 1] as Row, rows[i] as Row];
          expect(a.created_at > b.created_at || (a.created_at === b.created_at && a.id > b.id)).toBe(true);
        }
        for (const row of rows) {
          const sent = attempted.get(row.title);
          expect(sent, `${when}: a row (${row.title}) that no client sent`).toBeDefined();
          expect(sent?.userId, `${when}: ${row.title} in the wrong feed`).toBe(user.id);
          expect(row.type).toBe(sent?.type);
          expect(row.read_at).toBeNull();
          if (sent?.createdAt) expect(row.created_at).toBe(sent.createdAt);
          stored.add(row.title);
        }
      }
      const lost = [...acked].filter((id) => !stored.has(id));
      expect(lost, `${when}: acknowledged events lost`).toEqual([]);
      // A batch is one transaction: whole or nothing, answered or not.
      const groups = new Map<string, boolean[]>();
      for (const s of attempted.values())
        groups.set(s.group, [...(groups.get(s.group) ?? []), stored.has(s.id)]);
      for (const [group, landed] of groups) {
        expect(new Set(landed).size, `${when}: request ${group} landed in part`).toBe(1);
      }
      return stored;
    }

    for (let round = 0; round < ROUNDS; round++) {
      const [plan] = fc.sample(roundArb, { seed: SEED + round, numRuns: 1 });
      if (!plan) throw new Error("no plan");
      let killed = false;
      let killing: Promise<{ groups: number; shared: number }> | undefined;
      let ackedThisRound = 0;
      const unanswered: string[] = [];
      const live = server;
      const ack = (ids: string[]) => {
        for (const id of ids) acked.add(id);
        ackedThisRound += ids.length;
        if (!killing && ackedThisRound >= plan.killAfter) {
          // Read the group sizes, then kill while the clients (which go on meanwhile) wait for answers.
          killing = gathered(live.url).finally(() => {
            killed = true;
            live.proc.kill("SIGKILL");
          });
        }
      };

      await Promise.all(
        plan.clients.map(async (ops, c) => {
          for (const [n, op] of ops.entries()) {
            if (killed) return;
            const group = `r${round}-c${c}-${n}`;
            const events = op.events.map((e, i) =>
              toSent(e, op.batch ? `${group}.${i}` : group, (users[e.user] as { id: number }).id, group),
            );
            for (const e of events) attempted.set(e.id, e);
            requests++;
            let answer: { status: number; text: string };
            try {
              answer = op.batch
                ? await post(live.url, "/admin/v1/events/batch", { events: events.map((e) => e.body) })
                : await post(live.url, "/admin/v1/events", events[0]?.body);
            } catch {
              unanswered.push(group);
              return; // the server is gone
            }
            if (answer.status === 503) {
              // The store was too busy (a pool wait ran out): refused, not acknowledged.
              unavailable++;
              continue;
            }
            expect(answer.status, `${group}: ${answer.text}`).toBe(202);
            const json = JSON.parse(answer.text);
            const results = op.batch ? json.results : [json];
            expect(results).toEqual(events.map((e) => ({ id: e.id, duplicate: false, notifications: 1 })));
            ack(events.map((e) => e.id));
          }
        }),
      );
      expect(killed, "the clients ran out of work before the kill").toBe(true);
      const groups = await killing;
      expect(groups?.shared, `round ${round + 1}: no transaction carried two events`).toBeGreaterThan(0);
      sharedCommits += groups?.shared ?? 0;
      expect(unanswered.length, "no request was in flight at the kill").toBeGreaterThan(0);
      inFlightAtKills += unanswered.length;
      await live.exited;

      server = await spawnServer(env);
      servers.push(server);
      const stored = await verify(server.url, `after kill ${round + 1}`);

      // This round's ids once more, each on its own, with the same content: a duplicate exactly
      // when stored; what was in flight and did not land is stored now. Earlier rounds' ids (each
      // already re-posted singly after its own kill) go again in batches.
      const url = server.url;
      const thisRound = [...attempted.values()].filter((s) => s.group.startsWith(`r${round}-`));
      await eachLimit(thisRound, 16, async (s) => {
        requests++;
        const r = await post(url, "/admin/v1/events", s.body);
        expect(r.status, `${s.id}: ${r.text}`).toBe(202);
        expect(JSON.parse(r.text), s.id).toEqual(
          stored.has(s.id)
            ? { id: s.id, duplicate: true, notifications: 0 }
            : { id: s.id, duplicate: false, notifications: 1 },
        );
        acked.add(s.id);
      });
      const earlier = [...attempted.values()].filter((s) => !s.group.startsWith(`r${round}-`));
      for (let i = 0; i < earlier.length; i += 1000) {
        const chunk = earlier.slice(i, i + 1000);
        requests++;
        const r = await post(url, "/admin/v1/events/batch", { events: chunk.map((s) => s.body) });
        expect(r.status).toBe(202);
        expect(JSON.parse(r.text).results).toEqual(
          chunk.map((s) => ({ id: s.id, duplicate: true, notifications: 0 })),
        );
      }
      const after = await verify(server.url, `after re-posting, round ${round + 1}`);
      expect(after.size).toBe(attempted.size);
    }
    await server.kill9();
    reportProof(`crash-under-load ${backend}`, SEED, {
      rounds: ROUNDS,
      clients: CLIENTS,
      requests,
      events: attempted.size,
      in_flight_at_kills: inFlightAtKills,
      shared_commits_before_kills: sharedCommits,
      refused_503: unavailable,
    });
  }, 150_000);
});
