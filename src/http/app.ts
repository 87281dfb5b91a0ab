import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyServerOptions, type RouteOptions } from "fastify";
import type { Deps } from "../deps.js";
import { invalidRequest, tooLarge } from "../errors.js";
import { DEFAULTS } from "../settings.js";
import { StreamHub, type StreamOptions } from "../stream/feed-stream.js";
import { deliveryQueue } from "../webhooks/delivery-queue.js";
import { registerApiDocs } from "./api-docs.js";
import { adminAuth, refuseSessions, userAuth } from "./auth.js";
import { registerCors } from "./cors.js";
import { registerErrorHandling, sendError } from "./error-handler.js";
import { registerErrorSchemas } from "./error-schemas.js";
import { homeRoute } from "./home.js";
import { registerJsonParser } from "./json-parser.js";
import { lazyChildLogger } from "./logger.js";
import { DEFAULT_RATE_LIMITS, type RateLimits, registerRateLimits } from "./rate-limits.js";
import { adminRoutes } from "./routes/admin.js";
import { type BellBundle, bellRoutes, loadBellBundle } from "./routes/bell.js";
import { feedRoutes } from "./routes/feed.js";
import { healthRoutes } from "./routes/health.js";
import { metricsRoutes } from "./routes/metrics.js";
import { orgKeyRoutes } from "./routes/org-keys.js";
import { streamRoutes } from "./routes/stream.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { trackUnusedConnections } from "./unused-connections.js";
import { validatorCompiler } from "./validator-compiler.js";

export const BODY_LIMIT = 1024 * 1024;

/** Unsent output one live stream may queue before the client is cut off as too slow. */
const STREAM_BUFFER_BYTES = 1024 * 1024;

/** How long shutdown waits for requests on connections opened but not yet used. */
const SHUTDOWN_SETTLE_MS = 1000;

export interface AppOptions {
  deps: Deps;
  adminToken: string;
  /** What `X-Poll-Interval` tells pollers (seconds). Defaults: `DEFAULTS` in settings.ts, here and below. */
  pollIntervalS?: number;
  /** Live stream settings; 1 MiB of unsent output per client. */
  stream?: Partial<StreamOptions>;
  /** Fastify's logger option: `false` in tests, pino options in the server. */
  logger?: FastifyServerOptions["logger"];
  /** How long a client may take to send its headers, and its whole request. */
  timeouts?: { headersMs: number; bodyMs: number };
  /** Request limits of `/api/v1/*`. */
  limits?: RateLimits;
  /** Fastify's `trustProxy`: where the client address comes from behind a load balancer. */
  trustProxy?: boolean | string;
  /** Connections accepted at once; more are refused. */
  maxConnections?: number;
  /** Browser origins allowed to call `/api/v1/me/*` and `/bell.js` (`BELFRY_CORS_ORIGINS`). Default none. */
  corsOrigins?: readonly string[];
  /** Whether `GET /` redirects to the API reference (default true; off where `/` is a page of its own). */
  home?: boolean;
  /** Told about every route as it is registered (the OpenAPI test checks each is documented). */
  onRoute?: (route: RouteOptions) => void;
  /** What `GET /bell.js` serves; default: dist/bell.js as built, read once now; null: none. */
  bell?: BellBundle | null;
  /**
   * Whether the gauges (queue, streams, pool), the change-bus counters and the process metrics are
   * collected: the server does; tests that do not read `/metrics` need not.
   */
  observeMetrics?: boolean;
}

/** What Node's HTTP parser errors (raised before a request exists) are answered with. */
function clientErrorAnswer(code: string | undefined) {
  if (code === "HPE_HEADER_OVERFLOW")
    return {
      status: 431,
      reason: "Request Header Fields Too Large",
      message: "The request headers are too large.",
    };
  if (code === "ERR_HTTP_REQUEST_TIMEOUT")
    return { status: 408, reason: "Request Timeout", message: "The request was not received in time." };
  return { status: 400, reason: "Bad Request", message: "The request could not be parsed as HTTP." };
}

/**
 * Starts the metrics read at scrape time, and counts what the change bus reports: rows this
 * process created, and every (re)connection after which subscribers resync.
 */
function observe(deps: Deps, hub: StreamHub): void {
  deps.metrics.observe({
    deliveryQueue: () => deliveryQueue(deps),
    openStreams: () => hub.size,
    pool: () => deps.store.poolStats?.(),
  });
  deps.store.bus.subscribe((message) => {
    if ("resync" in message) deps.metrics.busResyncs.inc();
    else if (message.changes.created > 0) deps.metrics.notificationsCreated.inc(message.changes.created);
  });
}

/** Request ids unique across instances (a random prefix per process) and cheap (a counter). */
function requestIds(): () => string {
  const prefix = `req_${randomBytes(6).toString("hex")}`;
  let n = 0;
  return () => `${prefix}${(++n).toString(36).padStart(6, "0")}`;
}

/**
 * Builds the HTTP API without listening, so tests drive it in-process (`app.inject`) and the
 * server calls `listen`.
 */
export async function buildApp({
  deps,
  adminToken,
  pollIntervalS = DEFAULTS.pollIntervalS,
  stream = {},
  logger = false,
  timeouts = { headersMs: DEFAULTS.limits.headersTimeoutMs, bodyMs: DEFAULTS.limits.bodyTimeoutMs },
  limits = DEFAULT_RATE_LIMITS,
  trustProxy = DEFAULTS.limits.trustProxy,
  maxConnections = DEFAULTS.limits.maxConnections,
  corsOrigins = DEFAULTS.corsOrigins,
  home = true,
  onRoute,
  bell = loadBellBundle(),
  observeMetrics = false,
}: AppOptions): Promise<FastifyInstance> {
  const hub = new StreamHub();
  const streamOptions: StreamOptions = {
    heartbeatS: DEFAULTS.sseHeartbeatS,
    maxBufferBytes: STREAM_BUFFER_BYTES,
    maxPerCredential: DEFAULTS.limits.streamsPerCredential,
    ...stream,
  };
  const app = Fastify({
    logger,
    ...(logger !== false && { childLoggerFactory: lazyChildLogger }),
    bodyLimit: BODY_LIMIT,
    // Long path parameters reach the routes, which answer 404 (or 403) as the API reference says, instead
    // of the router's 400.
    routerOptions: { maxParamLength: 8192 },
    genReqId: requestIds(),
    trustProxy,
    // Slow clients: headers within 10 s and the whole request within 30 s, or the connection is
    // answered 408 and closed (checked every second, not Node's default 30 s).
    requestTimeout: timeouts.bodyMs,
    http: { headersTimeout: timeouts.headersMs, connectionsCheckingInterval: 1000 },
    // Requests already sent when shutdown begins are served (their answers close the connection),
    // not refused with a 503 that would not even carry the envelope.
    return503OnClosing: false,
    // A malformed URL (bad percent-encoding) gets the same envelope as everything else.
    frameworkErrors: (_error, _request, reply) =>
      sendError(reply, invalidRequest("The request URL is malformed.")),
    // Errors Node's HTTP parser raises before Fastify sees a request (headers too large, both
    // Content-Length and Transfer-Encoding…) get the envelope too.
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return;
      const { status, reason, message } = clientErrorAnswer((error as { code?: string }).code);
      const body = JSON.stringify({ error: { type: "invalid_request_error", message } });
      // An answer to HEAD has no body: a client would read one as garbage after the answer.
      const packet: unknown = error.rawPacket;
      const head = Buffer.isBuffer(packet) && packet.subarray(0, 5).toString("latin1") === "HEAD ";
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\n` +
          `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${head ? "" : body}`,
      );
    },
  });
  app.server.maxConnections = maxConnections;
  app.decorateRequest("principal", null);
  app.decorateRequest("credentialRows", null);
  app.decorateRequest("secretHash", null);
  const connections = trackUnusedConnections(app.server);
  // Hooks on every request are callback-style: an async hook costs a promise per request, which
  // measured ~10-30 % of throughput on the cheapest routes.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  // CORS next, so every later answer (a 413, an auth failure) carries its headers.
  await registerCors(app, corsOrigins);
  app.addHook("onRequest", (request, _reply, done) => {
    // Size first, whatever the content type: an oversized body is a 413 before anything else.
    const limit = request.routeOptions.bodyLimit ?? BODY_LIMIT;
    done(Number(request.headers["content-length"] ?? 0) > limit ? tooLarge(limit) : undefined);
  });
  // Requests by route pattern (bounded labels: never the raw URL), method and status.
  const { httpRequests, httpDuration } = deps.metrics;
  app.addHook("onResponse", (request, reply, done) => {
    const labels = {
      route: request.routeOptions.url ?? "unmatched",
      method: request.method,
      status: reply.statusCode,
    };
    httpRequests.inc(labels);
    httpDuration.observe(labels, reply.elapsedTime / 1000);
    done();
  });
  // While shutting down, answers close their connection: otherwise a keep-alive connection that
  // carried an in-flight request would hold the process open until its idle timeout.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
    hub.closeAll(); // streams never end by themselves
    await connections.settle(SHUTDOWN_SETTLE_MS);
  });
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    done(null, payload);
  });
  registerJsonParser(app);
  registerErrorHandling(app);
  if (onRoute) app.addHook("onRoute", onRoute);
  // Route schemas validate bodies with our own validator (the same messages as the domain
  // functions); query strings and most path parameters are read by the routes (see the file).
  app.setValidatorCompiler(validatorCompiler);
  registerErrorSchemas(app);
  await registerApiDocs(app);
  if (home) await app.register(homeRoute);

  const limiter = await registerRateLimits(app, limits);

  await app.register(async (scope) => healthRoutes(scope, deps));
  await app.register(async (scope) => bellRoutes(scope, bell ?? undefined));
  await app.register(async (scope) => {
    scope.addHook("onRequest", limiter.authenticated(userAuth(deps)));
    await feedRoutes(scope, deps, pollIntervalS);
    // Browser sessions read the feed; managing orgs and webhooks takes an API key.
    await scope.register(async (keysOnly) => {
      keysOnly.addHook(
        "onRequest",
        refuseSessions("A browser session token cannot administer orgs; use an API key."),
      );
      await orgKeyRoutes(keysOnly, deps);
    });
    await scope.register(async (keysOnly) => {
      keysOnly.addHook(
        "onRequest",
        refuseSessions("A browser session token cannot manage webhooks; use an API key."),
      );
      await webhookRoutes(keysOnly, deps);
    });
  });
  await app.register(async (scope) => streamRoutes(scope, deps, hub, streamOptions, limiter));
  await app.register(async (scope) => {
    scope.addHook("onRequest", adminAuth(adminToken));
    await adminRoutes(scope, deps);
    await metricsRoutes(scope, deps);
  });
  if (observeMetrics) observe(deps, hub);
  return app;
}
