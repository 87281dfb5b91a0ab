/**
 * Webhook delivery benchmark: deliveries per second to a local receiver, and ingest → delivery
 * latency, on SQLite and PostgreSQL, beside a bare node:http client posting the same bodies to the
 * same receiver in the same run (the ratio's baseline).
 *
 *   npm run bench:webhooks                       # both stores
 *   npm run bench:webhooks -- --store sqlite     # or postgres
 *   npm run bench:webhooks -- --events 5000
 */

import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { DEFAULT_WEBHOOKS } from "../src/config.js";
import { startDeliveryWorker } from "../src/delivery/worker.js";
import { createDeps, type Deps } from "../src/deps.js";
import { createUser } from "../src/identity/users.js";
import { ingestEvent } from "../src/ingest/ingest.js";
import { migrate } from "../src/store/migrate.js";
import { openStore, type Store } from "../src/store/store.js";
import { createEndpoint } from "../src/webhooks/endpoints.js";
import { startReceiver } from "./support/receiver.js";

const { values } = parseArgs({
  options: {
    store: { type: "string" },
    events: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "10" },
    pg: { type: "string", default: "postgres://postgres@127.0.0.1:5432/postgres" },
  },
});
const EVENTS = Number(values.events);
const CONCURRENCY = Number(values.concurrency);
const LATENCY_SAMPLES = 200;
const stores = values.store ? [values.store] : ["sqlite", "postgres"];

const receiver = await startReceiver();
const rows: string[][] = [];
const baseline = await bareBaseline();
rows.push(["bare node:http client", "-", fmt(baseline), "1.00", "-", "-"]);
for (const kind of stores) {
  const { store, drop } = await open(kind);
  try {
    const r = await measure(store);
    rows.push([
      `Belfry worker (${kind})`,
      String(CONCURRENCY),
      fmt(r.perSecond),
      (r.perSecond / baseline).toFixed(2),
      `${r.p50.toFixed(1)} ms`,
      `${r.p99.toFixed(1)} ms`,
    ]);
  } finally {
    await drop();
  }
}
await receiver.close();
printTable(["", "concurrency", "deliveries/s", "× bare", "ingest→delivery p50", "p99"], rows);

/** The same POSTs from a plain client, one connection each (as the worker does), same concurrency. */
async function bareBaseline(): Promise<number> {
  const body = JSON.stringify({ id: "evt_0", type: "system.payment.received", data: { amount_cents: 1 } });
  const url = new URL(receiver.url);
  const post = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(url, {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json" },
      });
      req.on("response", (res) => res.resume().on("end", resolve));
      req.on("error", reject);
      req.end(body);
    });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < EVENTS) await post();
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  receiver.received.length = 0;
  return EVENTS / seconds;
}

async function measure(store: Store) {
  const deps: Deps = createDeps(store, {
    webhooks: {
      ...DEFAULT_WEBHOOKS,
      allowHttp: true,
      allowNetworks: ["127.0.0.0/8"],
      concurrency: CONCURRENCY,
    },
  });
  const user = await createUser(deps, { email: `bench-${Date.now()}@example.com` });
  await createEndpoint(deps, user.id, { url: receiver.url });
  const pay = (id: string) =>
    ingestEvent(deps, {
      id,
      type: "system.payment.received",
      user_id: user.id,
      data: { amount_cents: 1, balance_cents: 1 },
    });

  // Throughput: a backlog of EVENTS deliveries, then a worker drains it.
  for (let i = 0; i < EVENTS; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, EVENTS - i) }, (_, j) => pay(`t-${i + j}`)));
  }
  const log = { warn: console.warn, error: console.error };
  const worker = startDeliveryWorker(deps, log);
  const started = performance.now();
  await until(() => receiver.received.length >= EVENTS);
  const perSecond = EVENTS / ((performance.now() - started) / 1000);
  receiver.received.length = 0;

  // Latency: one event at a time with the worker idle, from the ingest call to the receiver.
  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const t0 = Date.now();
    const before = receiver.received.length;
    await pay(`l-${i}`);
    await until(() => receiver.received.length > before);
    latencies.push((receiver.received.at(-1)?.at ?? t0) - t0);
  }
  await worker.stop();
  receiver.received.length = 0;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { perSecond, p50: pct(0.5), p99: pct(0.99) };
}

async function open(kind: string): Promise<{ store: Store; drop(): Promise<void> }> {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "belfry-bench-"));
    const store = openStore(`file:${join(dir, "bench.db")}`);
    await migrate(store);
    return {
      store,
      drop: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `belfry_bench_${Date.now()}`;
  const admin = new pg.Client({ connectionString: values.pg });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(values.pg ?? "");
  url.pathname = `/${name}`;
  const store = openStore(url.toString(), { poolSize: 20 });
  await migrate(store);
  return {
    store,
    drop: async () => {
      await store.close();
      await admin.query(`drop database ${name} with (force)`);
      await admin.end();
    },
  };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 1));
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function printTable(head: string[], body: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of body) console.log(line(r));
}
