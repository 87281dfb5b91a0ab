import { execFile, execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./process.js";

const run = promisify(execFile);

/** Where PostgreSQL's server binaries are (BELFRY_TEST_PG_BIN overrides). */
const BIN = process.env.BELFRY_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";
/** initdb and postgres refuse to run as root: as root, they run as this OS user. */
const OS_USER = "postgres";

const asRoot = process.getuid?.() === 0;

function osUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync("id", ["-u", OS_USER]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", OS_USER]).toString().trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/** Whether this machine can run a private cluster: the binaries, and a user to run them as. */
export const privatePostgresAvailable: boolean =
  existsSync(join(BIN, "initdb")) && (!asRoot || (existsSync("/usr/sbin/runuser") && osUser() !== undefined));

/**
 * A PostgreSQL cluster of the test's own — initdb'd into a temporary directory, on a free port of
 * 127.0.0.1, its socket in that directory, trust authentication, fsync on — which the test may
 * stop and start at will. The shared server on 5432 is never touched.
 */
export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/<database>`. */
  url(database?: string): string;
  /** Starts the server; resolves once it accepts connections. */
  start(): Promise<void>;
  /** `pg_ctl stop -m <mode>`; resolves once the server is down. */
  stop(mode: "fast" | "immediate"): Promise<void>;
  /** The server log so far (for failure messages). */
  log(): string;
  /** Stops the server if it runs and deletes the directory. Safe to call more than once. */
  destroy(): Promise<void>;
}

/** initdb's a new cluster and starts it. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  if (!privatePostgresAvailable) throw new Error(`no PostgreSQL server binaries in ${BIN}`);
  const dir = mkdtempSync(join(tmpdir(), "belfry-pg-"));
  const data = join(dir, "data");
  const logFile = join(dir, "server.log");
  const user = asRoot ? osUser() : undefined;
  if (user) chownSync(dir, user.uid, user.gid);
  const command = (name: string, args: string[]) =>
    asRoot
      ? (["/usr/sbin/runuser", ["-u", OS_USER, "--", join(BIN, name), ...args]] as const)
      : ([join(BIN, name), args] as const);
  const exec = async (name: string, args: string[]) => {
    const [file, argv] = command(name, args);
    await run(file, [...argv], { timeout: 60_000 });
  };
  const port = await freePort();
  // --no-sync only skips initdb's own flush of the new files; the server below runs with fsync on.
  await exec("initdb", [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=trust",
    "-E",
    "UTF8",
    "--no-sync",
    "--no-instructions",
  ]);
  writeFileSync(
    join(data, "postgresql.conf"),
    [
      "",
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      "fsync = on",
      "max_connections = 60",
      "",
    ].join("\n"),
    { flag: "a" },
  );
  let running = false;
  let destroyed = false;
  const stopNow = () => {
    if (!running) return;
    try {
      const [file, argv] = command("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      execFileSync(file, [...argv], { stdio: "ignore", timeout: 30_000 });
    } catch {}
    running = false;
  };
  // A test process that dies (or is killed by the runner) must not leave a postmaster behind.
  process.on("exit", stopNow);
  const cluster: PrivatePostgres = {
    url: (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async start() {
      await exec("pg_ctl", ["-D", data, "-l", logFile, "-w", "-t", "60", "start"]);
      running = true;
    },
    async stop(mode) {
      await exec("pg_ctl", ["-D", data, "-m", mode, "-w", "-t", "60", "stop"]);
      running = false;
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (running) await cluster.stop("immediate").catch(stopNow);
      process.off("exit", stopNow);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.start();
  } catch (error) {
    await cluster.destroy();
    throw new Error(`private PostgreSQL did not start: ${String(error)}\n${cluster.log().slice(-2000)}`);
  }
  return cluster;
}
