/**
 * The feed benchmark. For one store it seeds users through `belfry seed` (batch ingest),
 * starts Belfry and a bare node:http server as child processes, and drives both with autocannon
 * from this process, printing req/s, p50, p99 and the ratio to bare for each scenario, the
 * latency of a 1,000,000-row user against a 100-row user, and Belfry's peak RSS.
 *
 *   npm run bench:feed -- --store sqlite         (or postgres)
 *   npm run bench:feed -- --store postgres --duration 10 --big 100000
 */
import { Agent, get } from "node:http";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import {
  ADMIN_TOKEN as ADMIN,
  belfryEnv,
  fmt,
  freshDatabase,
  log,
  machine,
  PAYMENT,
  parseStore,
  type SeedUser,
  sampleRss,
  seed,
  startBare,
  startBelfry,
  table,
} from "./support/rig.js";

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "sqlite" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "10" },
    users: { type: "string", default: "100" },
    "per-user": { type: "string", default: "100" },
    big: { type: "string", default: "1000000" },
    pg: { type: "string", default: "postgres://postgres@127.0.0.1:5432/postgres" },
  },
});
const STORE = parseStore(values.store);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const databaseUrl = freshDatabase(STORE, values.pg ?? "");
log(`store: ${STORE} (${databaseUrl.replace(/\/\/[^@]*@/, "//")})`);
const env = belfryEnv(databaseUrl);

log(`seeding ${values.users} users × ${values["per-user"]} rows, then one user with ${values.big} rows`);
const small = seed(env, Number(values.users), Number(values["per-user"]));
const [big] = seed(env, 1, Number(values.big));
if (!big || small.length === 0) throw new Error("seeding failed");

const belfry = await startBelfry(env, { extraEnv: { BELFRY_WEBHOOK_WORKER: "false" } });
const bare = await startBare();
const rss = sampleRss(belfry.pid);

const results: string[][] = [];

const etags = new Map<number, string>();
const firstIds = new Map<number, number[]>();
for (const u of small) {
  const r = await fetch(`${belfry.url}/api/v1/me/notifications/unread-count`, { headers: auth(u) });
  etags.set(u.id, r.headers.get("etag") ?? "");
  const list = (await (
    await fetch(`${belfry.url}/api/v1/me/notifications?page_size=50`, { headers: auth(u) })
  ).json()) as {
    items: { id: number }[];
  };
  firstIds.set(
    u.id,
    list.items.map((i) => i.id),
  );
}

const rotating = (
  path: (u: SeedUser) => string,
  extra: (u: SeedUser) => Record<string, string> = () => ({}),
  url = belfry.url,
) => {
  let i = 0;
  return {
    url,
    requests: [
      {
        setupRequest: (req: autocannon.Request) => {
          const u = small[i++ % small.length] as SeedUser;
          return { ...req, path: path(u), headers: { ...req.headers, ...auth(u), ...extra(u) } };
        },
      },
    ],
  };
};

// The baseline gets the very same requests (rotating users' headers), so the load generator's
// own per-request cost is the same on both sides of the ratio.
const bareGet = await run(
  "bare node:http",
  rotating(
    () => "/api/v1/me/notifications/unread-count",
    () => ({}),
    bare.url,
  ),
);
const bareRate = bareGet.rate;
results.push(row("bare node:http (baseline)", bareGet, bareRate));

const scenarios: [string, autocannon.Options][] = [
  ["unread-count", rotating(() => "/api/v1/me/notifications/unread-count")],
  [
    "unread-count 304",
    rotating(
      () => "/api/v1/me/notifications/unread-count",
      (u) => ({ "if-none-match": etags.get(u.id) ?? "" }),
    ),
  ],
  ["list page 1 (page_size=50)", rotating(() => "/api/v1/me/notifications?page_size=50")],
  [
    `list unread=true&type=${PAYMENT}`,
    rotating(() => `/api/v1/me/notifications?unread=true&type=${PAYMENT}`),
  ],
];
for (const [name, options] of scenarios) results.push(row(name, await run(name, options), bareRate));

let n = 0;
const markRead = await run("mark-read", {
  url: belfry.url,
  method: "POST",
  requests: [
    {
      setupRequest: (req) => {
        const u = small[n % small.length] as SeedUser;
        const ids = firstIds.get(u.id) ?? [];
        const id = ids[Math.floor(n++ / small.length) % Math.max(1, ids.length)];
        return {
          ...req,
          method: "POST",
          path: `/api/v1/me/notifications/${id}/mark-read`,
          headers: { ...req.headers, ...auth(u) },
        };
      },
    },
  ],
});
results.push(row("mark-read", markRead, bareRate));

let seq = 0;
const event = (userId: number) => ({
  id: `bench-${Date.now()}-${seq++}`,
  type: PAYMENT,
  user_id: userId,
  data: { amount_cents: 2500, balance_cents: 3140 },
});
const ingest = await run("single ingest", {
  url: belfry.url,
  method: "POST",
  requests: [
    {
      setupRequest: (req) => ({
        ...req,
        method: "POST",
        path: "/admin/v1/events",
        headers: { ...req.headers, authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify(event((small[seq % small.length] as SeedUser).id)),
      }),
    },
  ],
});
results.push(row("single ingest", ingest, bareRate));

const BATCH = 1000;
const batch = await run("batch ingest (1,000 events)", {
  url: belfry.url,
  method: "POST",
  connections: 2,
  requests: [
    {
      setupRequest: (req) => ({
        ...req,
        method: "POST",
        path: "/admin/v1/events/batch",
        headers: { ...req.headers, authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({
          events: Array.from({ length: BATCH }, () => event((small[seq % small.length] as SeedUser).id)),
        }),
      }),
    },
  ],
});
results.push([
  ...row("batch ingest (1,000 events/request)", batch, bareRate),
  `${fmt(batch.rate * BATCH)} events/s`,
]);

// The same two calls for the big user and a 100-row user: one keep-alive connection, one
// request at a time, timed to the microsecond (autocannon's histogram counts whole ms).
const reference = small[0] as SeedUser;
const sizes: string[][] = [];
for (const [name, path] of [
  ["unread-count", "/api/v1/me/notifications/unread-count"],
  ["list page 1", "/api/v1/me/notifications?page_size=50"],
] as const) {
  log(`  ${name}: big vs small user…`);
  const large = await sequentialLatency(`${belfry.url}${path}`, auth(big));
  const tiny = await sequentialLatency(`${belfry.url}${path}`, auth(reference));
  sizes.push([
    name,
    `${large.p50.toFixed(2)} / ${large.p99.toFixed(2)} ms`,
    `${tiny.p50.toFixed(2)} / ${tiny.p99.toFixed(2)} ms`,
    (large.p50 / tiny.p50).toFixed(2),
  ]);
}

// Mark-all-read of the big user's unread rows (all of them): constant work, whatever their number.
const before = (await (
  await fetch(`${belfry.url}/api/v1/me/notifications/unread-count`, { headers: auth(big) })
).json()) as {
  count: number;
};
const markStarted = performance.now();
const marked = (await (
  await fetch(`${belfry.url}/api/v1/me/notifications/mark-all-read`, { method: "POST", headers: auth(big) })
).json()) as { marked_read: number };
const markMs = performance.now() - markStarted;

const peakRss = rss.stop();
belfry.stop();
bare.stop();

console.log(`\n## Feed, ${machine(STORE)}`);
console.log(
  `${DURATION} s per scenario, ${CONNECTIONS} connections (batch: 2), ${small.length} users × ${values["per-user"]} rows + 1 user × ${values.big} rows\n`,
);
table(["scenario", "req/s", "p50 ms", "p99 ms", "× bare", "errors", ""], results);
console.log();
table(
  [
    `${fmt(Number(values.big))}-row user vs 100-row user (sequential)`,
    "big p50 / p99",
    "small p50 / p99",
    "p50 ratio",
  ],
  sizes,
);
console.log(
  `\nmark-all-read of ${fmt(marked.marked_read)} unread rows (of ${fmt(before.count)}): ${markMs.toFixed(1)} ms, one request`,
);
console.log(`Belfry peak RSS under load: ${peakRss} MB`);
process.exit(0);

// ---------------------------------------------------------------------------------------------

interface Measured {
  rate: number;
  p50: number;
  p99: number;
  mean: number;
  errors: number;
}

async function run(name: string, options: autocannon.Options): Promise<Measured> {
  log(`  ${name}…`);
  const r = await autocannon({ connections: CONNECTIONS, duration: DURATION, ...options });
  return {
    rate: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    mean: r.latency.average,
    errors: r.errors + r.timeouts + r.non2xx - (name.includes("304") ? r["3xx"] : 0),
  };
}

function row(name: string, m: Measured, baseline: number): string[] {
  return [
    name,
    fmt(m.rate),
    String(m.p50),
    String(m.p99),
    (m.rate / baseline).toFixed(2),
    String(m.errors),
    "",
  ];
}

async function sequentialLatency(url: string, headers: Record<string, string>, n = 2000) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      get(url, { agent, headers }, (res) => {
        res.resume();
        res.on("end", () => resolve(performance.now() - started));
      }).on("error", reject);
    });
  for (let i = 0; i < 200; i++) await once(); // warm up
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push(await once());
  agent.destroy();
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(n / 2)] ?? 0, p99: times[Math.floor(n * 0.99)] ?? 0 };
}

function auth(u: SeedUser): Record<string, string> {
  return { authorization: `Bearer ${u.key}` };
}
