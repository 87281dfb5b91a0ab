#!/usr/bin/env node
import type { FastifyBaseLogger } from "fastify";
import { type Config, ConfigError, loadConfig } from "../config.js";
import { ApiError } from "../errors.js";
import { boundHeapGrowth } from "./heap.js";
import { usage } from "./usage.js";
import { UsageError } from "./usage-error.js";
import { runWatch } from "./watch.js";

/**
 * The server's modules, loaded only by the commands that use them: `belfry watch`, which a
 * status bar may start every few seconds, then loads the SDK alone and starts several times faster.
 */
async function serverSide() {
  const [
    { pino },
    { startDeliveryWorker },
    { createDeps },
    { startServer, storeOptions },
    { migrate },
    { openStore },
    { openMigratedStore },
    { PATIENT_TIMEOUTS },
  ] = await Promise.all([
    import("pino"),
    import("../delivery/worker.js"),
    import("../deps.js"),
    import("../server.js"),
    import("../store/migrate.js"),
    import("../store/store.js"),
    import("../store/open-migrated-store.js"),
    import("../store/store-timeouts.js"),
  ]);
  return {
    pino,
    startDeliveryWorker,
    createDeps,
    startServer,
    storeOptions,
    migrate,
    openStore,
    openMigratedStore,
    PATIENT_TIMEOUTS,
  };
}

const USAGE = usage();

/** How long SIGTERM waits for in-flight requests before giving up. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(argv: string[]): Promise<number> {
  const [command = "serve", ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return 0;
  }
  // A client of a Belfry somewhere: it needs none of the server's configuration.
  if (command === "watch") return watch(rest);
  if (command === "openapi") {
    const { OPENAPI_USAGE, runOpenApi } = await import("./openapi.js");
    if (rest[0] === "--help") console.log(OPENAPI_USAGE);
    else await runOpenApi(rest);
    return 0;
  }
  const config = loadConfig();
  const { createDeps, migrate, openStore, openMigratedStore, pino, storeOptions, PATIENT_TIMEOUTS } =
    await serverSide();
  // One-shot commands open the store as the server does (see storeOptions), waiting patiently,
  // and log the store's trouble to stderr (stdout is their answer).
  const oneShotOptions = () =>
    storeOptions(config, pino({ level: config.logLevel }, pino.destination(2)), PATIENT_TIMEOUTS);
  const oneShotStore = () => openMigratedStore(config.databaseUrl, oneShotOptions());
  if (command === "serve" || command === "worker" || command === "demo") boundHeapGrowth();
  switch (command) {
    case "serve":
      return serve(config);
    case "worker":
      return work(config);
    case "demo": {
      const { runDemo } = await import("./demo.js");
      const demo = await runDemo(config);
      return untilSignal(demo.app.log, () => demo.close());
    }
    case "seed": {
      const store = await oneShotStore();
      try {
        const deps = createDeps(store, { webhooks: config.webhooks });
        const { runSeed } = await import("./seed.js");
        const seeded = await runSeed(deps, rest, (line) => process.stderr.write(line));
        console.log(JSON.stringify(seeded, null, 2));
      } finally {
        await store.close();
      }
      return 0;
    }
    case "migrate": {
      const store = openStore(config.databaseUrl, oneShotOptions());
      try {
        const applied = await migrate(store);
        console.log(applied.length ? `Applied: ${applied.join(", ")}` : "Already up to date.");
      } finally {
        await store.close();
      }
      return 0;
    }
    case "admin": {
      const { ADMIN_USAGE, runAdmin } = await import("./admin.js");
      if (rest.length === 0 || rest[0] === "--help") {
        console.log(ADMIN_USAGE);
        return rest.length === 0 ? 2 : 0;
      }
      const store = await oneShotStore();
      try {
        console.log(
          JSON.stringify(await runAdmin(createDeps(store, { webhooks: config.webhooks }), rest), null, 2),
        );
      } finally {
        await store.close();
      }
      return 0;
    }
    case "backup": {
      if (rest.length !== 1 || rest[0]?.startsWith("-")) throw new UsageError("Usage: belfry backup <path>");
      const { backupDatabase } = await import("../store/backup.js");
      const done = await backupDatabase(config.databaseUrl, rest[0] as string);
      console.log(`Backed up ${done.source} to ${done.destination} (${done.bytes} bytes).`);
      return 0;
    }
    default:
      console.error(USAGE);
      return 2;
  }
}

async function serve(config: Config): Promise<number> {
  const { startServer } = await serverSide();
  const server = await startServer(config);
  return untilSignal(server.app.log, () => server.close());
}

async function work(config: Config): Promise<number> {
  const { createDeps, openMigratedStore, pino, startDeliveryWorker, storeOptions } = await serverSide();
  const log = pino({ level: config.logLevel });
  const store = await openMigratedStore(config.databaseUrl, storeOptions(config, log));
  const worker = startDeliveryWorker(createDeps(store, { webhooks: config.webhooks }), log);
  log.info("webhook delivery worker running");
  return untilSignal(log, async () => {
    await worker.stop();
    await store.close();
  });
}

/** `belfry watch` until it is done, or interrupted (SIGINT, SIGTERM, or the bar closing its pipe). */
function watch(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  process.stdout.on("error", stop); // EPIPE: the bar went away
  return runWatch(argv, {
    env: process.env,
    write: (text) => void process.stdout.write(text),
    warn: (text) => void process.stderr.write(text),
    signal: controller.signal,
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
    // A backup's refusals (kept by name: its module loads only for `belfry backup`).
    else if (
      error instanceof UsageError ||
      error instanceof ConfigError ||
      (error instanceof Error && error.name === "BackupError")
    )
      console.error(error.message);
    else console.error(error);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
