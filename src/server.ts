import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Config } from "./config.js";
import { startDeliveryWorker } from "./delivery/worker.js";
import { createDeps } from "./deps.js";
import { buildApp } from "./http/app.js";
import { loggerOptions } from "./http/logger.js";
import { openMigratedStore } from "./store/open-migrated-store.js";
import type { Store } from "./store/store.js";
import { SERVING_TIMEOUTS } from "./store/store-timeouts.js";

export interface RunningServer {
  app: FastifyInstance;
  store: Store;
  url: string;
  /** Stops accepting connections, lets in-flight requests finish, then closes the store. */
  close(): Promise<void>;
}

/**
 * Opens the store, migrates it, serves the API and (unless `BELFRY_WEBHOOK_WORKER=false`) runs
 * webhook delivery workers in-process. Prints where it listens and, when
 * `BELFRY_ADMIN_TOKEN` was not given, the admin token it generated (once; it is never logged).
 */
export async function startServer(
  config: Config,
  print: (line: string) => void = console.log,
): Promise<RunningServer> {
  let app: FastifyInstance | undefined;
  const store = await openMigratedStore(config.databaseUrl, {
    poolSize: config.pgPoolSize,
    timeouts: SERVING_TIMEOUTS,
    onPoolError: (error) => app?.log.warn({ err: { message: error.message } }, "database connection failed"),
    onBusError: (message, error) =>
      app?.log.warn({ err: { message: (error as Error | undefined)?.message } }, message),
  });
  try {
    const adminToken = config.adminToken ?? `bfa_${randomBytes(32).toString("base64url")}`;
    const deps = createDeps(store, { webhooks: config.webhooks });
    app = await buildApp({
      deps,
      adminToken,
      pollIntervalS: config.pollIntervalS,
      stream: { heartbeatS: config.sseHeartbeatS },
      logger: loggerOptions(config.logLevel),
    });
    await app.listen({ port: config.port, host: config.host });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : config.port;
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}`;
    print(`Belfry listening on ${url} (store: ${store.location})`);
    if (config.adminToken === undefined) {
      print(`Admin token (generated for this run, kept in memory only): ${adminToken}`);
    }
    const worker = config.webhooks.runWorker ? startDeliveryWorker(deps, app.log) : undefined;
    const running = app;
    return {
      app: running,
      store,
      url,
      close: async () => {
        await running.close();
        await worker?.stop();
        await store.close();
      },
    };
  } catch (error) {
    await app?.close();
    await store.close();
    throw error;
  }
}
