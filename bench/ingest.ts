/**
 * Producer ingest, measured from outside with wrk: single ingest (`POST /admin/v1/events`, one
 * event a request) from 32 concurrent clients over 50 users, against batch ingest
 * (`POST /admin/v1/events/batch`, 100 events a request) of the same store in the same run —
 * events/s, their ratio, p50/p99 per request, Belfry's peak RSS, and how many single ingests
 * shared each commit (the `belfry_group_commit_size` histogram). The two take turns for
 * `--rounds` rounds of `--duration` seconds each, so a busy neighbour on the machine weighs on
 * both sides of the ratio alike. `--mark-read` adds mark-read from 32 clients (each request marks
 * another unread row of a seeded user), which group-commits the same way on SQLite.
 *
 *   npm run bench:ingest -- --store sqlite          (or postgres; needs wrk: apt-get install wrk)
 *   npm run bench:ingest -- --store postgres --duration 10 --profile /tmp/prof
 *   npm run bench:ingest -- --store sqlite --mark-read
 *
 * `--profile DIR` runs Belfry under `node --cpu-prof` and leaves one .cpuprofile in DIR.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import {
  ADMIN_TOKEN,
  belfryEnv,
  exited,
  fmt,
  freshDatabase,
  log,
  machine,
  PAYMENT,
  parseStore,
  report,
  requireWrk,
  sampleRss,
  seed,
  startBelfry,
  table,
} from "./support/rig.js";

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "sqlite" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "32" },
    "batch-connections": { type: "string", default: "4" },
    "batch-size": { type: "string", default: "100" },
    users: { type: "string", default: "50" },
    "per-user": { type: "string", default: "100" },
    pg: { type: "string", default: "postgres://postgres@127.0.0.1:5432/postgres" },
    rounds: { type: "string", default: "3" },
    "mark-read": { type: "boolean", default: false },
    profile: { type: "string" },
  },
});
const STORE = parseStore(values.store);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const BATCH_CONNECTIONS = Number(values["batch-connections"]);
const BATCH = Number(values["batch-size"]);
const ROUNDS = Number(values.rounds);

requireWrk();

const env = belfryEnv(freshDatabase(STORE, values.pg ?? ""));
log(`store: ${STORE}; seeding ${values.users} users × ${values["per-user"]} rows`);
const users = seed(env, Number(values.users), Number(values["per-user"]));

const nodeFlags = values.profile ? ["--cpu-prof", `--cpu-prof-dir=${values.profile}`] : [];
const belfry = await startBelfry(env, { extraEnv: { BELFRY_WEBHOOK_WORKER: "false" }, nodeFlags });

const dir = mkdtempSync(join(tmpdir(), "belfry-wrk-"));
const run = Date.now().toString(36);

/**
 * A wrk script posting payment events with ids unique to this run, `perRequest` events a
 * request (a batch body when more than one), the users taken in turn.
 */
function ingestScript(name: string, perRequest: number): string {
  const file = join(dir, `${name}.lua`);
  const event = `'{"id":"${run}-${name}-%d","type":"${PAYMENT}","user_id":%d,"data":{"amount_cents":2500,"balance_cents":3140}}'`;
  writeFileSync(
    file,
    `local users = { ${users.map((u) => u.id).join(", ")} }
local n = 0
local function event()
  n = n + 1
  return string.format(${event}, n, users[n % #users + 1])
end
request = function()
  local headers = { ["Authorization"] = "Bearer ${ADMIN_TOKEN}", ["Content-Type"] = "application/json" }
  ${
    perRequest === 1
      ? 'return wrk.format("POST", "/admin/v1/events", headers, event())'
      : `local events = {}
  for i = 1, ${perRequest} do events[i] = event() end
  return wrk.format("POST", "/admin/v1/events/batch", headers, '{"events":[' .. table.concat(events, ",") .. ']}')`
  }
end
`,
  );
  return file;
}

interface Measured {
  requests: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  rssMb: number;
}

/** wrk's latency ("812.00us", "9.77ms", "1.20s") in ms. */
function ms(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text ?? "");
  if (!m) return Number.NaN;
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2] as "us" | "ms" | "s"];
}

async function wrk(name: string, connections: number, script: string): Promise<Measured> {
  log(`  ${name}…`);
  // Run without blocking this process, which samples Belfry's RSS meanwhile.
  const rss = sampleRss(belfry.pid);
  const { stdout: out } = await promisify(execFile)(
    "wrk",
    ["-t1", `-c${connections}`, `-d${DURATION}s`, "--timeout", "10s", "--latency", "-s", script, belfry.url],
    { encoding: "utf8" },
  );
  const percentile = (p: string) => ms(new RegExp(`^\\s*${p}%\\s+(\\S+)`, "m").exec(out)?.[1]);
  const socketErrors = /Socket errors: (.*)/.exec(out)?.[1];
  const done = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(out);
  return {
    requests: Number(done?.[1] ?? 0),
    seconds: Number(done?.[2] ?? 1) * { ms: 0.001, s: 1, m: 60 }[(done?.[3] ?? "s") as "ms" | "s" | "m"],
    p50Ms: percentile("50"),
    p99Ms: percentile("99"),
    errors:
      Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
      (socketErrors
        ? socketErrors.split(",").reduce((sum, part) => sum + Number(/\d+/.exec(part)?.[0] ?? 0), 0)
        : 0),
    rssMb: rss.stop(),
  };
}

/** Several rounds of one scenario, summed: events/s over all of them, the median round's latencies. */
interface Summed {
  events: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  rssMb: number;
}
function sum(rounds: Measured[], perRequest: number): Summed {
  const seconds = rounds.reduce((t, r) => t + r.seconds, 0);
  const requests = rounds.reduce((t, r) => t + r.requests, 0);
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  return {
    requests: requests / seconds,
    events: (requests * perRequest) / seconds,
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    errors: rounds.reduce((t, r) => t + r.errors, 0),
    rssMb: Math.max(...rounds.map((r) => r.rssMb)),
  };
}

/** The group commit histogram's count and sum for `operation`, read from /metrics. */
async function groups(operation: string): Promise<{ count: number; sum: number }> {
  const text = await (
    await fetch(`${belfry.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  ).text();
  const read = (suffix: string) =>
    Number(
      new RegExp(`^belfry_group_commit_size_${suffix}\\{operation="${operation}"\\} (\\S+)`, "m").exec(
        text,
      )?.[1] ?? 0,
    );
  return { count: read("count"), sum: read("sum") };
}

/**
 * Mark-read from `CONNECTIONS` clients: each request marks another of the seeded users' unread
 * rows (never the same one twice, so each is a real write), users in turn.
 */
async function markReads(): Promise<{ summed: Summed; groups: { count: number; sum: number } }> {
  const pairs: string[] = [];
  const rows: number[][] = [];
  // Every user has the rows the ingest scenarios added too: up to 800 each.
  for (const u of users) {
    const ids: number[] = [];
    for (let page = 1; page <= 4; page++) {
      const list = (await (
        await fetch(`${belfry.url}/api/v1/me/notifications?unread=true&page_size=200&page=${page}`, {
          headers: { authorization: `Bearer ${u.key}` },
        })
      ).json()) as { items: { id: number }[] };
      ids.push(...list.items.map((i) => i.id));
    }
    rows.push(ids);
  }
  for (let i = 0; rows.some((r) => i < r.length); i++) {
    users.forEach((u, k) => {
      const id = rows[k]?.[i];
      if (id !== undefined) pairs.push(`${u.key}\t${id}\n`);
    });
  }
  const file = join(dir, "marks.txt");
  writeFileSync(file, pairs.join(""));
  const measured: Measured[] = [];
  let used = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const script = join(dir, `mark-read-${round}.lua`);
    writeFileSync(
      script,
      `local marks = {}
for line in io.lines("${file}") do
  local key, id = line:match("([^\\t]*)\\t(.*)")
  marks[#marks + 1] = { key = key, id = id }
end
local n = ${used}
request = function()
  n = n + 1
  local m = marks[n]
  if m == nil then error("out of unread rows") end
  return wrk.format("POST", "/api/v1/me/notifications/" .. m.id .. "/mark-read", { ["Authorization"] = "Bearer " .. m.key })
end
`,
    );
    const m = await wrk(`mark-read, ${CONNECTIONS} clients, round ${round}`, CONNECTIONS, script);
    measured.push(m);
    used += m.requests + CONNECTIONS; // requests still in flight at the end were sent too
  }
  return { summed: sum(measured, 1), groups: await groups("mark_read") };
}

// The two scenarios take turns, round after round, so both see the same share of whatever
// else the machine is doing; each total is events over the time of all its rounds.
const singles: Measured[] = [];
const batches: Measured[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  singles.push(
    await wrk(
      `single ingest, ${CONNECTIONS} clients, round ${round}`,
      CONNECTIONS,
      ingestScript(`single-${round}`, 1),
    ),
  );
  batches.push(
    await wrk(
      `batch ingest, ${BATCH} events/request, ${BATCH_CONNECTIONS} clients, round ${round}`,
      BATCH_CONNECTIONS,
      ingestScript(`batch-${round}`, BATCH),
    ),
  );
}
const gathered = await groups("ingest");
const marks = values["mark-read"] ? await markReads() : undefined;
const single = sum(singles, 1);
const batch = sum(batches, BATCH);
belfry.stop();
await exited(belfry);

const mean = (g: { count: number; sum: number }) => (g.count === 0 ? "—" : (g.sum / g.count).toFixed(1));
console.log(`\n## Ingest, ${machine(STORE)}`);
console.log(
  `wrk, 1 thread, ${ROUNDS} rounds × ${DURATION} s per scenario (taking turns), ${users.length} users (× ${values["per-user"]} seeded rows) in turn, payment events\n`,
);
const row = (name: string, m: Summed, perRequest: number) => [
  name,
  fmt(m.events),
  fmt(m.requests),
  `${m.p50Ms.toFixed(1)} ms`,
  `${m.p99Ms.toFixed(1)} ms`,
  (m.events / batch.events).toFixed(2),
  String(m.errors),
  `${m.rssMb} MB`,
  perRequest === 1 ? mean(gathered) : "",
];
table(
  ["scenario", "events/s", "req/s", "p50", "p99", "× batch", "errors", "peak RSS", "events/commit"],
  [
    row(`single ingest, ${CONNECTIONS} clients`, single, 1),
    row(`batch ingest (${BATCH}/request), ${BATCH_CONNECTIONS} clients`, batch, BATCH),
  ],
);
if (marks) {
  console.log(
    `\nmark-read, ${CONNECTIONS} clients, ${ROUNDS} rounds × ${DURATION} s, a different unread row each time\n`,
  );
  table(
    ["scenario", "req/s", "p50", "p99", "errors", "marks/commit"],
    [
      [
        `mark-read, ${CONNECTIONS} clients`,
        fmt(marks.summed.requests),
        `${marks.summed.p50Ms.toFixed(1)} ms`,
        `${marks.summed.p99Ms.toFixed(1)} ms`,
        String(marks.summed.errors),
        mean(marks.groups),
      ],
    ],
  );
}
report(`single ingest, ${CONNECTIONS} clients`, STORE, single.events, batch.events);
report("RSS MB", STORE, Math.max(single.rssMb, batch.rssMb), 0);
if (values.profile) log(`CPU profile in ${values.profile}`);
process.exit(0);
