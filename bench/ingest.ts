/**
 * Producer ingest, measured from outside with wrk: single ingest (`POST /admin/v1/events`, one
 * event a request) from 32 concurrent clients over 50 users, against batch ingest
 * (`POST /admin/v1/events/batch`, 100 events a request) of the same store in the same run —
 * events/s, their ratio, p50/p99 per request, Belfry's peak RSS, and how many single ingests
 * shared each commit (the `belfry_group_commit_size` histogram). The two take turns for
 * `--rounds` rounds of `--duration` seconds each, so a busy neighbour on the machine weighs on
 * both sides of the ratio alike.
 *
 *   npm run bench:ingest -- --store sqlite          (or postgres; needs wrk: apt-get install wrk)
 *   npm run bench:ingest -- --store postgres --duration 10 --profile /tmp/prof
 *
 * `--profile DIR` runs Belfry under `node --cpu-prof` and leaves one .cpuprofile in DIR.
 */
import { execFile, execFileSync } from "node:child_process";
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
    profile: { type: "string" },
  },
});
const STORE = parseStore(values.store);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const BATCH_CONNECTIONS = Number(values["batch-connections"]);
const BATCH = Number(values["batch-size"]);
const ROUNDS = Number(values.rounds);

try {
  execFileSync("wrk", ["--version"], { stdio: "ignore" });
} catch (error) {
  // wrk prints its version and exits 1; only a missing binary is a problem.
  if ((error as { code?: string }).code === "ENOENT") {
    log("wrk is not installed: apt-get install wrk (or brew install wrk)");
    process.exit(1);
  }
}

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
function script(name: string, perRequest: number): string {
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

async function wrk(name: string, connections: number, perRequest: number): Promise<Measured> {
  log(`  ${name}…`);
  // Run without blocking this process, which samples Belfry's RSS meanwhile.
  const rss = sampleRss(belfry.pid);
  const { stdout: out } = await promisify(execFile)(
    "wrk",
    [
      "-t1",
      `-c${connections}`,
      `-d${DURATION}s`,
      "--timeout",
      "10s",
      "--latency",
      "-s",
      script(name.replace(/\W+/g, "-"), perRequest),
      belfry.url,
    ],
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

/** The group commit histogram's count and sum for single ingest, read from /metrics. */
async function groups(): Promise<{ count: number; sum: number }> {
  const text = await (
    await fetch(`${belfry.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  ).text();
  const read = (suffix: string) =>
    Number(
      new RegExp(`^belfry_group_commit_size_${suffix}\\{operation="ingest"\\} (\\S+)`, "m").exec(text)?.[1] ??
        0,
    );
  return { count: read("count"), sum: read("sum") };
}

// The two scenarios take turns, round after round, so both see the same share of whatever
// else the machine is doing; each total is events over the time of all its rounds.
const singles: Measured[] = [];
const batches: Measured[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  singles.push(await wrk(`single ingest, ${CONNECTIONS} clients, round ${round}`, CONNECTIONS, 1));
  batches.push(
    await wrk(
      `batch ingest, ${BATCH} events/request, ${BATCH_CONNECTIONS} clients, round ${round}`,
      BATCH_CONNECTIONS,
      BATCH,
    ),
  );
}
const gathered = await groups();
const single = sum(singles, 1);
const batch = sum(batches, BATCH);
belfry.stop();
await exited(belfry);

const meanGroup = gathered.count === 0 ? "—" : (gathered.sum / gathered.count).toFixed(1);
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
  perRequest === 1 ? meanGroup : "",
];
table(
  ["scenario", "events/s", "req/s", "p50", "p99", "× batch", "errors", "peak RSS", "events/commit"],
  [
    row(`single ingest, ${CONNECTIONS} clients`, single, 1),
    row(`batch ingest (${BATCH}/request), ${BATCH_CONNECTIONS} clients`, batch, BATCH),
  ],
);
report(`single ingest, ${CONNECTIONS} clients`, STORE, single.events, batch.events);
report("RSS MB", STORE, Math.max(single.rssMb, batch.rssMb), 0);
if (values.profile) log(`CPU profile in ${values.profile}`);
process.exit(0);
