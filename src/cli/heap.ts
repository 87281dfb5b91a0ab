import { setFlagsFromString } from "node:v8";

/**
 * How far V8 lets the old generation grow past what its last full collection kept, in percent.
 * Left to itself V8 grows it up to fourfold when collections are cheap, so under load Belfry sat
 * on 60–80 MB of garbage (peak RSS 187–215 MB in the benchmarks); at 20 % it stayed within
 * 121–146 MB, with more frequent (partly concurrent) collections and no loss of ingest throughput
 * measured. See BENCHMARKS.md, "Memory".
 */
const HEAP_GROWING_PERCENT = 20;

/**
 * Bounds heap growth for a long-running process (`serve`, `worker`, `demo`). Unlike the young
 * generation's size, V8 reads this at every collection, so setting it here takes effect (measured
 * on Node.js 20) however Belfry was started; `--heap-growing-percent` given to node itself wins.
 */
export function boundHeapGrowth(): void {
  if (process.execArgv.some((arg) => arg.startsWith("--heap-growing-percent"))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
