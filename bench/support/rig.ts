/**
 * What every benchmark needs: a throwaway store, users seeded through `belfry seed` (batch
 * ingest), Belfry and the bare node:http baseline started as child processes, Belfry's peak RSS
 * sampled from /proc, and tables printed as Markdown. Benchmarks never import from test/.
 */
import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export type StoreKind = "sqlite" | "postgres";

export const ADMIN_TOKEN = "bench_admin_token_0123456789abcdef0123";
export const CLI = join(import.meta.dirname, "../../dist/cli/main.js");
export const PAYMENT = "system.payment.received";

export interface SeedUser {
  id: number;
  key: string;
}

const cleanup: (() => void)[] = [];
process.on("exit", () => {
  for (const f of cleanup.reverse()) f();
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

/** Runs `f` when the benchmark exits, however it exits. */
export const atExit = (f: () => void) => cleanup.push(f);

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Exits with how to install wrk when it is missing (the read and ingest benchmarks drive it). */
export function requireWrk(): void {
  try {
    execFileSync("wrk", ["--version"], { stdio: "ignore" });
  } catch (error) {
    // wrk prints its version and exits 1; only a missing binary is a problem.
    if ((error as { code?: string }).code === "ENOENT") {
      log("wrk is not installed: apt-get install wrk (or brew install wrk)");
      process.exit(1);
    }
  }
}

export function parseStore(value: string | undefined): StoreKind {
  if (value === "sqlite" || value === "postgres") return value;
  throw new Error(`--store must be sqlite or postgres, not ${value}`);
}

/** A new, empty database of the given kind, dropped when the benchmark exits. */
export function freshDatabase(store: StoreKind, pgAdminUrl: string): string {
  if (store === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "belfry-bench-"));
    atExit(() => rmSync(dir, { recursive: true, force: true }));
    return `file:${join(dir, "bench.db")}`;
  }
  const name = `belfry_bench_${process.pid}_${Date.now()}`;
  execFileSync("psql", [pgAdminUrl, "-qc", `create database ${name}`]);
  atExit(() => execFileSync("psql", [pgAdminUrl, "-qc", `drop database if exists ${name} with (force)`]));
  const url = new URL(pgAdminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The environment Belfry's CLI runs with against `databaseUrl`. */
export function belfryEnv(databaseUrl: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: databaseUrl,
    BELFRY_ADMIN_TOKEN: ADMIN_TOKEN,
    BELFRY_LOG_LEVEL: "warn",
    // Limits stay on (their cost is part of every request) with a budget the load never exhausts.
    BELFRY_RATE_LIMIT: "1000000",
    ...extra,
  };
}

/** Seeds `users` users with `perUser` feed rows each through `belfry seed`; returns them with keys. */
export function seed(env: NodeJS.ProcessEnv, users: number, perUser: number): SeedUser[] {
  const out = execFileSync(
    process.execPath,
    [CLI, "seed", "--users", String(users), "--per-user", String(perUser)],
    { env, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 * 1024 * 1024 },
  );
  const seeded = JSON.parse(out.toString()) as { users: SeedUser[]; seconds: number; events: number };
  log(
    `  ${fmt(seeded.events)} events in ${seeded.seconds.toFixed(1)} s (${fmt(seeded.events / seeded.seconds)}/s through batch ingest)`,
  );
  return seeded.users;
}

export interface Started {
  url: string;
  pid: number;
  proc: ChildProcess;
  stop(): void;
}

/**
 * The node flags `npm start` runs Belfry with, read from package.json's start script so the
 * benchmarks measure what is shipped; `BELFRY_BENCH_NODE_FLAGS` adds more (to try one).
 */
const START_FLAGS = startFlags();

function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8")) as {
    scripts: { start: string };
  };
  const m = /^node ((?:--\S+ )*)dist\/cli\/main\.js serve$/.exec(pkg.scripts.start);
  if (!m) throw new Error(`package.json's start script is not "node [flags] dist/cli/main.js serve"`);
  const extra = process.env.BELFRY_BENCH_NODE_FLAGS ?? "";
  return `${m[1]} ${extra}`.split(" ").filter(Boolean);
}

/** Starts `belfry serve` on a free port and waits for /healthz. `nodeFlags` go to node itself. */
export async function startBelfry(
  env: NodeJS.ProcessEnv,
  options: { extraEnv?: Record<string, string>; nodeFlags?: string[] } = {},
): Promise<Started> {
  const port = 20000 + Math.floor(Math.random() * 10000);
  const flags = [...START_FLAGS, ...(options.nodeFlags ?? [])];
  const proc = spawn(process.execPath, [...flags, CLI, "serve"], {
    env: { ...env, PORT: String(port), ...options.extraEnv },
    stdio: ["ignore", "ignore", "inherit"],
  });
  atExit(() => proc.kill("SIGKILL"));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 400; i++) {
    if (proc.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/healthz`)).ok) return started(url, proc);
    } catch {}
    await sleep(50);
  }
  throw new Error("Belfry did not start");
}

/** Starts the bare node:http baseline (bench/bare-server.mjs): the fastest a Node.js answer gets. */
export function startBare(): Promise<Started> {
  return startScript("bare-server.mjs", {});
}

/**
 * Starts the floor (bench/floor-server.mjs): bare node:http doing Belfry's data work for the read
 * scenarios and nothing else, on Belfry's store (`env`).
 */
export function startFloor(env: NodeJS.ProcessEnv): Promise<Started> {
  return startScript("floor-server.mjs", env);
}

async function startScript(script: string, env: NodeJS.ProcessEnv): Promise<Started> {
  const port = 30000 + Math.floor(Math.random() * 10000);
  const proc = fork(join(import.meta.dirname, "..", script), {
    env: { ...env, PORT: String(port) },
    execArgv: [],
  });
  atExit(() => proc.kill("SIGKILL"));
  await new Promise((resolve) => proc.once("message", resolve));
  return started(`http://127.0.0.1:${port}`, proc);
}

function started(url: string, proc: ChildProcess): Started {
  return {
    url,
    pid: proc.pid ?? 0,
    proc,
    stop: () => {
      // SIGTERM lets Belfry shut down cleanly (a CPU profile, if asked for, is written then).
      proc.kill("SIGTERM");
    },
  };
}

/** Waits for a started child to exit (after `stop()`). */
export function exited(child: Started): Promise<void> {
  if (child.proc.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.proc.once("exit", () => resolve()));
}

/** Samples a process's resident memory every 200 ms; `stop()` gives the peak in MB. */
export function sampleRss(pid: number): { stop(): number } {
  let peakKb = 0;
  const timer = setInterval(() => {
    try {
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
      peakKb = Math.max(peakKb, kb);
    } catch {}
  }, 200);
  return {
    stop() {
      clearInterval(timer);
      return Math.round(peakKb / 1024);
    },
  };
}

/** CPU time (user + system, ms) a process has used so far; 0 once it is gone. */
export function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8")
      .replace(/^.*\) /, "")
      .split(" ");
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 a second).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/** CPU time (ms) used so far by every PostgreSQL server process on this machine. */
export function postgresCpuMs(): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === "postgres") total += cpuMs(Number(entry));
    } catch {}
  }
  return total;
}

/** One line saying what machine and store a table was measured on. */
export function machine(store: StoreKind): string {
  return `${store} — ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** Prints a Markdown table. */
export function table(head: string[], body: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of body) console.log(line(r));
}

/**
 * Writes one result line for `bench/all.ts` to collect (when it asked for them with
 * `BELFRY_BENCH_RESULTS`): `{ measure, store, value, baseline }`.
 */
export function report(measure: string, store: StoreKind, value: number, baseline: number): void {
  if (!process.env.BELFRY_BENCH_RESULTS) return;
  appendFileSync(
    process.env.BELFRY_BENCH_RESULTS,
    `${JSON.stringify({ measure, store, value, baseline })}\n`,
  );
}
