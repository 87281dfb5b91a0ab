/**
 * Webhook delivery: how fast `belfry serve`'s in-process worker drains a backlog to ten local
 * endpoints (ten receivers, one user each), against a bare keep-alive node:http client replaying
 * the very same requests (receivers, paths, headers, bodies) with the same number in flight, in
 * the same run. Also: connections each side opened, ingest → delivery latency with the worker
 * idle, and Belfry's peak RSS.
 *
 *   npm run bench:webhooks -- --store sqlite          (or postgres)
 *   npm run bench:webhooks -- --store postgres --events 50000 --profile /tmp/prof
 *
 * The backlog is queued through batch ingest by an instance that runs no worker; then a fresh
 * `belfry serve` drains it, timed from the first delivery to arrive to the last, with the CPU
 * time Belfry (and on PostgreSQL, the database server) spent per delivery in that window.
 * `--profile DIR` runs the draining Belfry under `node --cpu-prof`.
 */
import { fork } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { DEFAULTS } from "../src/settings.js";
import { type BenchReceiver, startReceiver } from "./support/receiver.js";
import {
  ADMIN_TOKEN,
  atExit,
  belfryEnv,
  exited,
  fmt,
  freshDatabase,
  log,
  machine,
  PAYMENT,
  parseStore,
  report,
  type SeedUser,
  sampleRss,
  seed,
  startBelfry,
  table,
} from "./support/rig.js";

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "sqlite" },
    events: { type: "string", default: "20000" },
    endpoints: { type: "string", default: "10" },
    pg: { type: "string", default: "postgres://postgres@127.0.0.1:5432/postgres" },
    profile: { type: "string" },
  },
});
const STORE = parseStore(values.store);
const EVENTS = Number(values.events);
const ENDPOINTS = Number(values.endpoints);
const LATENCY_SAMPLES = 200;
/** What Belfry's worker runs at once by default; the bare client gets the same. */
const CONCURRENCY = DEFAULTS.webhooks.concurrency;

const receivers = await Promise.all(Array.from({ length: ENDPOINTS }, () => startReceiver()));
const received = () => receivers.reduce((n, r) => n + r.received.length, 0);
const connections = () => receivers.reduce((n, r) => n + r.connections(), 0);
const resetReceivers = () => {
  for (const r of receivers) r.reset();
};

const env = belfryEnv(freshDatabase(STORE, values.pg ?? ""), {
  BELFRY_WEBHOOK_ALLOW_HTTP: "true",
  BELFRY_WEBHOOK_ALLOW_NETWORKS: "127.0.0.0/8",
});
log(`store: ${STORE}; ${ENDPOINTS} users, one endpoint each; ${fmt(EVENTS)} events`);
const users = seed(env, ENDPOINTS, 0);
// The backlog is queued by an instance without a worker; a second one, with its worker, drains it.
const setup = await startBelfry(env, { extraEnv: { BELFRY_WEBHOOK_WORKER: "false" } });
let base = setup.url;

const call = async (method: string, path: string, token: string, body?: unknown) => {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined && { "content-type": "application/json" }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text === "" ? undefined : JSON.parse(text);
};
const endpoints: { user: SeedUser; id: number }[] = [];
for (const [i, user] of users.entries()) {
  const url = (receivers[i] as BenchReceiver).url;
  const created = await call("POST", "/api/v1/me/webhooks", user.key, { url });
  endpoints.push({ user, id: created.id });
}
// The backlog, through batch ingest.
let seq = 0;
const event = (user: SeedUser) => ({
  id: `wh-${seq++}`,
  type: PAYMENT,
  user_id: user.id,
  data: { amount_cents: 2500, balance_cents: 3140 },
});
for (let i = 0; i < EVENTS; i += 1000) {
  const n = Math.min(1000, EVENTS - i);
  const events = Array.from({ length: n }, (_, j) => event(users[(i + j) % users.length] as SeedUser));
  await call("POST", "/admin/v1/events/batch", ADMIN_TOKEN, { events });
}
log(`  backlog of ${fmt(EVENTS)} deliveries queued`);
setup.stop();
await exited(setup);

// Throughput: from the first delivery to arrive to the last, with the CPU time Belfry and
// PostgreSQL (every postgres process on the machine) spent in between.
resetReceivers();
const nodeFlags = values.profile ? ["--cpu-prof", `--cpu-prof-dir=${values.profile}`] : [];
const belfry = await startBelfry(env, { nodeFlags });
base = belfry.url;
const rss = sampleRss(belfry.pid);
await until(() => received() > 0, 60_000);
const firstArrival = Math.min(...receivers.map((r) => r.received[0]?.at ?? Number.POSITIVE_INFINITY));
const cpuBefore = cpuMs(belfry.pid);
const pgBefore = STORE === "postgres" ? postgresCpuMs() : 0;
await until(() => received() >= EVENTS, 600_000);
const lastArrival = Math.max(...receivers.map((r) => r.received.at(-1)?.at ?? 0));
const belfryRate = (EVENTS - 1) / ((lastArrival - firstArrival) / 1000);
const belfryCpu = (cpuMs(belfry.pid) - cpuBefore) / EVENTS;
const pgCpu = STORE === "postgres" ? (postgresCpuMs() - pgBefore) / EVENTS : undefined;
const belfryConnections = connections();
const replay = receivers.flatMap((r) => r.received.map(({ at: _, ...req }) => req));
const uniqueIds = new Set(replay.map((r) => r.headers["webhook-id"])).size;
log(`  Belfry: ${fmt(belfryRate)} deliveries/s, ${fmt(belfryConnections)} connections`);

// Every delivery recorded as succeeded, once (the kept per-status counts).
const succeeded = async () => {
  let total = 0;
  for (const e of endpoints) {
    const path = `/api/v1/me/webhooks/${e.id}/deliveries?status=succeeded&page_size=1`;
    total += (await call("GET", path, e.user.key)).total as number;
  }
  return total;
};
await until(async () => (await succeeded()) >= EVENTS, 60_000);

// Latency: one event at a time with the worker idle, from the ingest call to its arrival.
resetReceivers();
const latencies: number[] = [];
for (let i = 0; i < LATENCY_SAMPLES; i++) {
  const user = users[i % users.length] as SeedUser;
  const before = received();
  const t0 = performance.now();
  await call("POST", "/admin/v1/events", ADMIN_TOKEN, event(user));
  await until(() => received() > before, 10_000);
  const arrival = Math.max(...receivers.map((r) => r.received.at(-1)?.at ?? 0));
  latencies.push(arrival - t0);
}
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
const peakRss = rss.stop();
belfry.stop();
await exited(belfry);

// The baseline: the same requests, replayed by a bare keep-alive client in its own process.
resetReceivers();
const dir = mkdtempSync(join(tmpdir(), "belfry-bench-"));
const file = join(dir, "requests.json");
writeFileSync(file, JSON.stringify(replay));
const client = fork(join(import.meta.dirname, "bare-client.mjs"));
atExit(() => client.kill("SIGKILL"));
await new Promise((resolve) => client.once("message", resolve));
client.send({ file, concurrency: CONCURRENCY });
const bare = (await new Promise((resolve) => client.once("message", resolve))) as {
  seconds: number;
  cpuMs: number;
  failed: number;
};
client.kill();
const bareRate = replay.length / bare.seconds;
const bareConnections = connections();
await Promise.all(receivers.map((r) => r.close()));

console.log(`\n## Webhook delivery, ${machine(STORE)}`);
console.log(
  `${fmt(EVENTS)} deliveries to ${ENDPOINTS} local endpoints, ${CONCURRENCY} in flight; CPU: the sending process (user + system) per request; latency: ${LATENCY_SAMPLES} single events, worker idle\n`,
);
table(
  [
    "",
    "deliveries/s",
    "× bare",
    "CPU per delivery",
    "connections opened",
    "ingest→delivery p50",
    "p99",
    "peak RSS",
  ],
  [
    [
      "bare keep-alive client (replay)",
      fmt(bareRate),
      "1.00",
      `${((bare.cpuMs * 1000) / replay.length).toFixed(0)} µs`,
      fmt(bareConnections),
      "-",
      "-",
      "-",
    ],
    [
      `Belfry worker (${STORE})`,
      fmt(belfryRate),
      (belfryRate / bareRate).toFixed(2),
      `${(belfryCpu * 1000).toFixed(0)} µs`,
      fmt(belfryConnections),
      `${pct(0.5).toFixed(1)} ms`,
      `${pct(0.99).toFixed(1)} ms`,
      `${peakRss} MB`,
    ],
  ],
);
if (pgCpu !== undefined)
  console.log(`\nPostgreSQL server CPU per delivery meanwhile: ${(pgCpu * 1000).toFixed(0)} µs`);
console.log(
  `\nreceived ${fmt(replay.length)} requests for ${fmt(uniqueIds)} events (${fmt(replay.length - uniqueIds)} repeated); bare client failures: ${bare.failed}`,
);
report(`webhook deliveries/s, ${ENDPOINTS} endpoints`, STORE, belfryRate, bareRate);
report("RSS MB", STORE, peakRss, 0);
if (values.profile) log(`CPU profiles in ${values.profile}`);
process.exit(0);

/** CPU time (user + system) a process has used, in ms, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  // utime and stime are the 12th and 13th fields after the command name, in clock ticks (100/s).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time of every postgres process on this machine, in ms (other databases' work included). */
function postgresCpuMs(): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (!stat.includes("(postgres)")) continue;
      const f = stat.split(") ")[1]?.split(" ") ?? [];
      total += (Number(f[11]) + Number(f[12])) * 10;
    } catch {}
  }
  return total;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error("timed out");
    await sleep(1);
  }
}
