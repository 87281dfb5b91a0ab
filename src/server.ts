import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import type { Config } from "./config.js";
import { startDeliveryWorker } from "./delivery/worker.js";
import { createDeps } from "./deps.js";
import { buildApp } from "./http/app.js";
import { loggerOptions } from "./http/logger.js";
import { type RetentionScheduler, startRetention } from "./retention/scheduler.js";
import { openMigratedStore } from "./store/open-migrated-store.js";
import type { Store, StoreOptions } from "./store/store.js";
import { SERVING_TIMEOUTS } from "./store/store-timeouts.js";

/**
 * The Redis client that shares rate-limit counts: it fails fast while Redis is away (no offline
 * queue, 1 s budgets), so requests get a 503 at once instead of waiting, and reconnects by itself.
 */
async function connectRedis(url: string, onError: (error: Error) => void): Promise<Redis> {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    commandTimeout: 1000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  redis.on("error", onError);
  // Until it is ready every limited request would be a 503: wait a moment for it at start (a
  // Redis that is down then does not stop the server, which answers 503 until it returns).
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, 3000);
    redis.once("ready", () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
  return redis;
}

/** Where the store's own trouble (a failed pooled connection, the bus reconnecting) is logged. */
export interface StoreLog {
  warn(obj: object, msg: string): void;
}

/**
 * How every Belfry process opens its store — the server, `belfry worker` and each CLI command
 * alike: the configured pool size, the store's trouble logged, and the serving timeouts (a
 * caller waiting on a store that is gone gets its answer within 2 s; see store-timeouts.ts).
 * One-shot commands pass PATIENT_TIMEOUTS instead: they have no client to retry after a 503,
 * so beside a busy server they wait their turn for the write lock rather than fail.
 */
export function storeOptions(config: Config, log: StoreLog, timeouts = SERVING_TIMEOUTS): StoreOptions {
  return {
    poolSize: config.pgPoolSize,
    timeouts,
    ...(config.bus && { bus: config.bus }),
    onPoolError: (error) => log.warn({ err: { message: error.message } }, "database connection failed"),
    onBusError: (message, error) =>
      log.warn({ err: { message: (error as Error | undefined)?.message } }, message),
  };
}

export interface RunningServer {
  app: FastifyInstance;
  store: Store;
  url: string;
  /** The background pruning, when `BELFRY_RETENTION_DAYS` is set. */
  retention: RetentionScheduler | undefined;
  /** Stops accepting connections, lets in-flight requests finish, then closes the store. */
  close(): Promise<void>;
}

/**
 * Opens the store, migrates it, serves the API, (unless `BELFRY_WEBHOOK_WORKER=false`) runs
 * webhook delivery workers in-process and, with `BELFRY_RETENTION_DAYS` set, prunes old rows in
 * the background. Prints where it listens and, when
 * `BELFRY_ADMIN_TOKEN` was not given, the admin token it generated (once; it is never logged).
 */
export async function startServer(
  config: Config,
  print: (line: string) => void = console.log,
  /** Registers extra routes before listening (`belfry demo` adds its console; `serve` adds none). */
  extend?: (app: FastifyInstance) => Promise<void>,
): Promise<RunningServer> {
  let app: FastifyInstance | undefined;
  let redis: Redis | undefined;
  const store = await openMigratedStore(
    config.databaseUrl,
    storeOptions(config, { warn: (obj, msg) => app?.log.warn(obj, msg) }),
    // Distributing the schema on Citus is a one-time event worth a line at start-up.
    (done) => {
      for (const line of done) if (line.startsWith("citus:")) print(line);
    },
  );
  try {
    const adminToken = config.adminToken ?? `bfa_${randomBytes(32).toString("base64url")}`;
    const deps = createDeps(store, { webhooks: config.webhooks });
    const { limits } = config;
    redis =
      limits.redisUrl === undefined
        ? undefined
        : await connectRedis(limits.redisUrl, (error) =>
            app?.log.warn({ err: { message: error.message } }, "redis failed"),
          );
    app = await buildApp({
      deps,
      adminToken,
      observeMetrics: true,
      // A page of its own at `/` (the demo's console) replaces the pointer to the API reference.
      home: extend === undefined,
      pollIntervalS: config.pollIntervalS,
      corsOrigins: config.corsOrigins,
      stream: { heartbeatS: config.sseHeartbeatS, maxPerCredential: limits.streamsPerCredential },
      logger: loggerOptions(config.logLevel),
      limits: {
        perCredentialPerMinute: limits.ratePerMinute,
        authFailuresPerMinute: limits.authFailuresPerMinute,
        ...(redis && { redis }),
      },
      timeouts: { headersMs: limits.headersTimeoutMs, bodyMs: limits.bodyTimeoutMs },
      trustProxy: limits.trustProxy,
      maxConnections: limits.maxConnections,
    });
    await extend?.(app);
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
    const retention =
      config.retentionDays === undefined ? undefined : startRetention(deps, config.retentionDays, app.log);
    const running = app;
    return {
      app: running,
      store,
      url,
      retention,
      close: async () => {
        await running.close();
        await retention?.stop();
        await worker?.stop();
        redis?.disconnect();
        await store.close();
      },
    };
  } catch (error) {
    await app?.close();
    redis?.disconnect();
    await store.close();
    throw error;
  }
}
