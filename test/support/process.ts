import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The built CLI; `npm test` builds it before running the suites. */
export const CLI = join(import.meta.dirname, "../../dist/cli/main.js");

function requireBuild(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
}

/** A free loopback port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== "object" || !address) throw new Error("no port");
  return address.port;
}

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  kill9(): Promise<void>;
  sigterm(): Promise<number | string>;
}

/** Starts `belfry serve` in a child process and waits until /healthz answers. */
export async function spawnServer(env: Record<string, string>, port?: number): Promise<ServerProcess> {
  requireBuild();
  const p = port ?? (await freePort());
  const proc = spawn(process.execPath, [CLI, "serve"], {
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: String(p),
      BELFRY_LOG_LEVEL: "warn",
      // Suites send many requests from one address with one key; the limits have their own suite.
      BELFRY_RATE_LIMIT: "0",
      BELFRY_AUTH_FAILURE_LIMIT: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout?.on("data", (d) => (out += d));
  proc.stderr?.on("data", (d) => (out += d));
  const exited = new Promise<number | string>((resolve) =>
    proc.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  let done = false;
  void exited.then(() => (done = true));
  const url = `http://127.0.0.1:${p}`;
  const server: ServerProcess = {
    url,
    proc,
    output: () => out,
    exited,
    async kill9() {
      proc.kill("SIGKILL");
      await exited;
    },
    async sigterm() {
      proc.kill("SIGTERM");
      return exited;
    },
  };
  // Start-up migrates the store first (on a fresh Citus database, distributing it takes seconds).
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !done) {
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) return server;
    } catch {}
    await sleep(50);
  }
  proc.kill("SIGKILL");
  throw new Error(`server did not answer /healthz: ${out.slice(-2000)}`);
}

/** Runs the CLI to completion. */
export async function runCli(
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  requireBuild();
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.on("data", (d) => (stderr += d));
  proc.stdin.end(stdin ?? "");
  const code = await new Promise<number | null>((resolve) => proc.on("exit", resolve));
  return { code, stdout, stderr };
}

/** fetch + JSON for talking to a spawned server. */
export async function call(
  url: string,
  method: string,
  path: string,
  key?: string,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected field by field
): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(url + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined };
}
