/**
 * `npm run bench`: every benchmark on both stores, then the summary that matters, each measure
 * as a ratio to its baseline from the same run (bare node:http for reads, batch ingest for single
 * ingest, a bare keep-alive client for webhook delivery) next to its target.
 *
 *   npm run bench                      (both stores)
 *   npm run bench -- --store sqlite    (one)
 *
 * Each benchmark also runs alone (`npm run bench:reads`, `bench:ingest`, `bench:webhooks`,
 * `bench:feed`) and prints its own tables; see BENCHMARKS.md.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseStore, type StoreKind, table } from "./support/rig.js";

const { values } = parseArgs({ options: { store: { type: "string" } } });
const stores: StoreKind[] = values.store ? [parseStore(values.store)] : ["sqlite", "postgres"];
const BENCHMARKS = ["reads.ts", "ingest.ts", "webhooks.ts"];

const results = join(mkdtempSync(join(tmpdir(), "belfry-bench-")), "results.jsonl");
for (const store of stores) {
  for (const script of BENCHMARKS) {
    execFileSync(process.execPath, ["--import", "tsx", join(import.meta.dirname, script), "--store", store], {
      stdio: "inherit",
      env: { ...process.env, BELFRY_BENCH_RESULTS: results },
    });
  }
}

interface Result {
  measure: string;
  store: StoreKind;
  value: number;
  baseline: number;
}
const measured = readFileSync(results, "utf8")
  .trim()
  .split("\n")
  .map((line) => JSON.parse(line) as Result);

/** Each measure, its baseline's name and its target ratio per store (RSS: a ceiling in MB). */
const TARGETS: [string, string, { sqlite: number; postgres: number }][] = [
  ["unread-count", "bare node:http", { sqlite: 0.6, postgres: 0.3 }],
  ["list page 1 (50 rows)", "bare node:http", { sqlite: 0.35, postgres: 0.2 }],
  ["unread-count 304", "bare node:http", { sqlite: 0.7, postgres: 0.5 }],
  ["single ingest, 32 clients", "batch ingest events/s", { sqlite: 0.25, postgres: 0.25 }],
  ["webhook deliveries/s, 10 endpoints", "bare keep-alive client", { sqlite: 0.4, postgres: 0.4 }],
  ["RSS MB", "", { sqlite: 150, postgres: 150 }],
];
console.log("\n## Summary: ratio to the same run's baseline (target)\n");
table(
  ["measure", "baseline", ...stores],
  TARGETS.map(([measure, baseline, target]) => [
    measure,
    baseline || "peak, any scenario",
    ...stores.map((store) => {
      const all = measured.filter((r) => r.store === store && r.measure === measure);
      if (all.length === 0) return "—";
      if (measure === "RSS MB") return `${Math.max(...all.map((r) => r.value))} MB (≤ ${target[store]})`;
      const r = all[all.length - 1] as Result;
      const ratio = r.value / r.baseline;
      return `${ratio.toFixed(2)}× (≥ ${target[store]}) ${ratio >= target[store] ? "met" : "missed"}`;
    }),
  ]),
);
