/**
 * The read scenarios behind a bell, measured from outside with wrk (a C load generator, so the
 * client's own cost is small and the same on both sides): unread-count, the 304 of a poll that
 * sends its ETag back, and list page 1 (50 rows), each rotating over 100 users' keys, against the
 * bare node:http baseline answering the very same requests in the same run.
 *
 *   npm run bench:reads -- --store sqlite          (or postgres; needs wrk: apt-get install wrk)
 *   npm run bench:reads -- --store postgres --duration 10 --profile /tmp/prof
 *
 * `--profile DIR` runs Belfry under `node --cpu-prof` and leaves one .cpuprofile per run in DIR
 * (open it in Chrome DevTools' Performance panel or speedscope); `--only NAME` runs only the
 * scenarios whose name contains NAME, so a profile shows one of them.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  belfryEnv,
  cpuMs,
  exited,
  fmt,
  freshDatabase,
  log,
  machine,
  parseStore,
  postgresCpuMs,
  report,
  requireWrk,
  type Started,
  sampleRss,
  seed,
  startBare,
  startBelfry,
  startFloor,
  table,
} from "./support/rig.js";

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "sqlite" },
    duration: { type: "string", default: "8" },
    connections: { type: "string", default: "32" },
    users: { type: "string", default: "100" },
    "per-user": { type: "string", default: "100" },
    pg: { type: "string", default: "postgres://postgres@127.0.0.1:5432/postgres" },
    profile: { type: "string" },
    only: { type: "string" },
  },
});
const STORE = parseStore(values.store);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);

requireWrk();

const env = belfryEnv(freshDatabase(STORE, values.pg ?? ""));
log(`store: ${STORE}; seeding ${values.users} users × ${values["per-user"]} rows`);
const users = seed(env, Number(values.users), Number(values["per-user"]));

const nodeFlags = values.profile ? ["--cpu-prof", `--cpu-prof-dir=${values.profile}`] : [];
const belfry = await startBelfry(env, { extraEnv: { BELFRY_WEBHOOK_WORKER: "false" }, nodeFlags });
const bare = await startBare();
const floor = await startFloor(env);
const rss = sampleRss(belfry.pid);

// Each user's current ETag, checked to answer 304, for the polling scenario.
const UNREAD = "/api/v1/me/notifications/unread-count";
const etags: string[] = [];
for (const u of users) {
  const r = await fetch(`${belfry.url}${UNREAD}`, { headers: { authorization: `Bearer ${u.key}` } });
  const etag = r.headers.get("etag") ?? "";
  const again = await fetch(`${belfry.url}${UNREAD}`, {
    headers: { authorization: `Bearer ${u.key}`, "if-none-match": etag },
  });
  if (r.status !== 200 || again.status !== 304) throw new Error(`user ${u.id}: ${r.status}, ${again.status}`);
  etags.push(etag);
}

// The floor must give the very same answers, or it would measure other work.
for (const path of [UNREAD, "/api/v1/me/notifications?page_size=50"]) {
  const get = async (server: Started, etag?: string) => {
    const headers: Record<string, string> = { authorization: `Bearer ${users[0]?.key}` };
    if (etag) headers["if-none-match"] = etag;
    const r = await fetch(`${server.url}${path}`, { headers });
    return `${r.status} ${r.headers.get("etag")} ${(await r.text()).length} ${r.headers.get("x-feed-version")}`;
  };
  const [ours, floors] = [await get(belfry), await get(floor)];
  const [ours304, floors304] = [await get(belfry, etags[0]), await get(floor, etags[0])];
  if (ours !== floors || ours304 !== floors304)
    throw new Error(`the floor answers ${path} otherwise:\n${ours}\n${floors}\n${ours304}\n${floors304}`);
}

const dir = mkdtempSync(join(tmpdir(), "belfry-wrk-"));
writeFileSync(join(dir, "users.txt"), users.map((u, i) => `${u.key}\t${etags[i]}\n`).join(""));
/** A wrk script sending GET `path` with each user's key in turn (and ETag, for `conditional`). */
function script(path: string, conditional: boolean): string {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(
    file,
    `local users = {}
for line in io.lines("${join(dir, "users.txt")}") do
  local key, etag = line:match("([^\\t]*)\\t(.*)")
  users[#users + 1] = { key = key, etag = etag }
end
local i = math.random(#users)
request = function()
  i = i % #users + 1
  local u = users[i]
  local headers = { ["Authorization"] = "Bearer " .. u.key }
  ${conditional ? 'headers["If-None-Match"] = u.etag' : ""}
  return wrk.format("GET", "${path}", headers)
end
`,
  );
  return file;
}

interface Measured {
  rate: number;
  /** CPU time per request of the server (and of PostgreSQL), µs: steady whatever else runs. */
  cpuUs: number;
  pgCpuUs: number;
  p50: string;
  p99: string;
  errors: number;
}

function wrk(name: string, server: Started, path: string, conditional = false): Measured {
  log(`  ${name}…`);
  const url = server.url;
  const cpuBefore = cpuMs(server.pid);
  const pgBefore = STORE === "postgres" ? postgresCpuMs() : 0;
  const out = execFileSync(
    "wrk",
    [
      "-t1",
      `-c${CONNECTIONS}`,
      `-d${DURATION}s`,
      "--latency",
      "-s",
      script(path, conditional),
      `${url}${path}`,
    ],
    { encoding: "utf8" },
  );
  const percentile = (p: string) => new RegExp(`^\\s*${p}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "?";
  const errors = /Socket errors: (.*)/.exec(out)?.[1];
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 1);
  const pgUsed = STORE === "postgres" ? postgresCpuMs() - pgBefore : 0;
  return {
    cpuUs: ((cpuMs(server.pid) - cpuBefore) * 1000) / requests,
    pgCpuUs: (pgUsed * 1000) / requests,
    rate: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50: percentile("50"),
    p99: percentile("99"),
    errors:
      Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
      (errors ? errors.split(",").reduce((sum, part) => sum + Number(/\d+/.exec(part)?.[0] ?? 0), 0) : 0),
  };
}

const baseline = wrk("bare node:http", bare, UNREAD);

// Each scenario: its name, its path and whether it sends the user's current ETag.
const SCENARIOS: [string, string, boolean][] = [
  ["unread-count", UNREAD, false],
  ["unread-count 304", UNREAD, true],
  ["list page 1 (50 rows)", "/api/v1/me/notifications?page_size=50", false],
];
const chosen = SCENARIOS.filter(([name]) => name.includes(values.only ?? ""));
const scenarios = chosen.map(([name, path, etag]): [string, Measured] => [
  name,
  wrk(name, belfry, path, etag),
]);
const peakRss = rss.stop();
belfry.stop();
// The floor on the same store, once Belfry is done with it.
const floors = chosen.map(([name, path, etag]): [string, Measured] => [
  name,
  wrk(`floor: ${name}`, floor, path, etag),
]);
bare.stop();
floor.stop();
await exited(belfry);

console.log(`\n## Reads, ${machine(STORE)}`);
console.log(
  `wrk, 1 thread, ${CONNECTIONS} connections, ${DURATION} s per scenario, ${users.length} users × ${values["per-user"]} rows, keys rotating\n`,
);
const row = (name: string, m: Measured) => [
  name,
  fmt(m.rate),
  m.p50,
  m.p99,
  (m.rate / baseline.rate).toFixed(2),
  m.cpuUs.toFixed(0),
  ...(STORE === "postgres" ? [m.pgCpuUs.toFixed(0)] : []),
  String(m.errors),
];
table(
  [
    "scenario",
    "req/s",
    "p50",
    "p99",
    "× bare",
    "server CPU µs/req",
    ...(STORE === "postgres" ? ["PostgreSQL CPU µs/req"] : []),
    "errors",
  ],
  [
    row("bare node:http (baseline)", baseline),
    ...scenarios.map(([name, m]) => row(name, m)),
    ...floors.map(([name, m]) => row(`floor: ${name}`, m)),
  ],
);
console.log(
  "\nfloor: bare node:http doing Belfry's authentication and statement for the answer, nothing else (bench/floor-server.mjs)",
);
console.log(`\nBelfry peak RSS under load: ${peakRss} MB`);
for (const [name, m] of scenarios) report(name, STORE, m.rate, baseline.rate);
report("RSS MB", STORE, peakRss, 0);
if (values.profile) log(`CPU profiles in ${values.profile}`);
process.exit(0);
