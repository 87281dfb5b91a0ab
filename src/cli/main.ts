#!/usr/bin/env node
import type { FastifyBaseLogger } from "fastify";
import { pino } from "pino";
import { type Config, ConfigError, loadConfig } from "../config.js";
import { startDeliveryWorker } from "../delivery/worker.js";
import { createDeps } from "../deps.js";
import { ApiError } from "../errors.js";
import { startServer } from "../server.js";
import { BackupError, backupDatabase } from "../store/backup.js";
import { migrate } from "../store/migrate.js";
import { openMigratedStore } from "../store/open-migrated-store.js";
import { openStore } from "../store/store.js";
import { SERVING_TIMEOUTS } from "../store/store-timeouts.js";
import { ADMIN_USAGE, runAdmin, UsageError } from "./admin.js";
import { runSeed } from "./seed.js";

const USAGE = `Usage: belfry <command>

  serve      run the API and webhook delivery (the default; what npm start runs)
  worker     run webhook delivery only (scale delivery apart from the API)
  migrate    bring the store's schema up to date and exit
  admin      create users, keys, orgs, members; ingest an event (belfry admin --help)
  seed       fill the store with users and notifications for benchmarks (belfry seed --users N --per-user M)
  backup     copy the embedded store's file while it serves (belfry backup <path>)

Configuration comes from the environment: DATABASE_URL, PORT, HOST, BELFRY_ADMIN_TOKEN,
BELFRY_LOG_LEVEL, BELFRY_PG_POOL_SIZE (see the README).`;

/** How long SIGTERM waits for in-flight requests before giving up. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(argv: string[]): Promise<number> {
  const [command = "serve", ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return 0;
  }
  const config = loadConfig();
  switch (command) {
    case "serve":
      return serve(config);
    case "worker":
      return work(config);
    case "seed": {
      const store = openStore(config.databaseUrl, { poolSize: config.pgPoolSize });
      try {
        await migrate(store);
        const deps = createDeps(store, { webhooks: config.webhooks });
        const seeded = await runSeed(deps, rest, (line) => process.stderr.write(line));
        console.log(JSON.stringify(seeded, null, 2));
      } finally {
        await store.close();
      }
      return 0;
    }
    case "migrate": {
      const store = openStore(config.databaseUrl);
      try {
        const applied = await migrate(store);
        console.log(applied.length ? `Applied: ${applied.join(", ")}` : "Already up to date.");
      } finally {
        await store.close();
      }
      return 0;
    }
    case "backup": {
      if (rest.length !== 1 || rest[0]?.startsWith("-")) throw new UsageError("Usage: belfry backup <path>");
      const done = await backupDatabase(config.databaseUrl, rest[0] as string);
      console.log(`Backed up ${done.source} to ${done.destination} (${done.bytes} bytes).`);
      return 0;
    }
    case "admin": {
      if (rest.length === 0 || rest[0] === "--help") {
        console.log(ADMIN_USAGE);
        return rest.length === 0 ? 2 : 0;
      }
      const store = openStore(config.databaseUrl);
      try {
        await migrate(store);
        console.log(
          JSON.stringify(await runAdmin(createDeps(store, { webhooks: config.webhooks }), rest), null, 2),
        );
      } finally {
        await store.close();
      }
      return 0;
    }
    default:
      console.error(USAGE);
      return 2;
  }
}

async function serve(config: Config): Promise<number> {
  const server = await startServer(config);
  return untilSignal(server.app.log, () => server.close());
}

async function work(config: Config): Promise<number> {
  const log = pino({ level: config.logLevel });
  const store = await openMigratedStore(config.databaseUrl, {
    poolSize: config.pgPoolSize,
    timeouts: SERVING_TIMEOUTS,
    onPoolError: (error) => log.warn({ err: { message: error.message } }, "database connection failed"),
    onBusError: (message, error) =>
      log.warn({ err: { message: (error as Error | undefined)?.message } }, message),
  });
  const worker = startDeliveryWorker(createDeps(store, { webhooks: config.webhooks }), log);
  log.info("webhook delivery worker running");
  return untilSignal(log, async () => {
    await worker.stop();
    await store.close();
  });
}

/** Resolves with the exit code once SIGTERM or SIGINT has been handled by `shutdown`. */
function untilSignal(
  log: Pick<FastifyBaseLogger, "info" | "error">,
  shutdown: () => Promise<void>,
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down: finishing what is in flight");
      setTimeout(() => {
        log.error("shutdown took too long; exiting");
        resolve(1);
      }, SHUTDOWN_GRACE_MS).unref();
      shutdown().then(
        () => resolve(0),
        (error: unknown) => {
          log.error({ err: error }, "error while shutting down");
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ApiError) console.error(`${error.type}: ${error.message}`);
    else if (error instanceof UsageError || error instanceof ConfigError || error instanceof BackupError)
      console.error(error.message);
    else console.error(error);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
