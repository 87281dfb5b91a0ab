import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { Deps } from "../deps.js";
import { invalidRequest, tooLarge } from "../errors.js";
import { StreamHub, type StreamOptions } from "../stream/feed-stream.js";
import { adminAuth, userAuth } from "./auth.js";
import { registerErrorHandling, send } from "./error-handler.js";
import { registerJsonParser } from "./json-parser.js";
import { lazyChildLogger } from "./logger.js";
import { adminRoutes } from "./routes/admin.js";
import { type BellBundle, bellRoutes, loadBellBundle } from "./routes/bell.js";
import { feedRoutes } from "./routes/feed.js";
import { healthRoutes } from "./routes/health.js";
import { orgKeyRoutes } from "./routes/org-keys.js";
import { streamRoutes } from "./routes/stream.js";
import { webhookRoutes } from "./routes/webhooks.js";

export const BODY_LIMIT = 1024 * 1024;

export interface AppOptions {
  deps: Deps;
  adminToken: string;
  /** What `X-Poll-Interval` tells pollers (seconds). Default 60. */
  pollIntervalS?: number;
  /** Live stream settings; default a 15 s heartbeat and 1 MiB of unsent output per client. */
  stream?: Partial<StreamOptions>;
  /** Fastify's logger option: `false` in tests, pino options in the server. */
  logger?: FastifyServerOptions["logger"];
  /** What `GET /bell.js` serves; default: dist/bell.js as built, read once now; null: none. */
  bell?: BellBundle | null;
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
  pollIntervalS = 60,
  stream = {},
  logger = false,
  bell = loadBellBundle(),
}: AppOptions): Promise<FastifyInstance> {
  const hub = new StreamHub();
  const streamOptions: StreamOptions = { heartbeatS: 15, maxBufferBytes: 1024 * 1024, ...stream };
  const app = Fastify({
    logger,
    ...(logger !== false && { childLoggerFactory: lazyChildLogger }),
    bodyLimit: BODY_LIMIT,
    // Long path parameters reach the routes, which answer 404 (or 403) as the SPEC says, instead
    // of the router's 400.
    routerOptions: { maxParamLength: 8192 },
    genReqId: requestIds(),
    // A malformed URL (bad percent-encoding) gets the same envelope as everything else.
    frameworkErrors: (_error, _request, reply) =>
      send(reply, invalidRequest("The request URL is malformed.")),
    // Errors Node's HTTP parser raises before Fastify sees a request (headers too large, both
    // Content-Length and Transfer-Encoding…) get the envelope too.
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return;
      const status = (error as { code?: string }).code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
      const body = JSON.stringify({
        error: {
          type: "invalid_request_error",
          message:
            status === 431
              ? "The request headers are too large."
              : "The request could not be parsed as HTTP.",
        },
      });
      socket.end(
        `HTTP/1.1 ${status} ${status === 431 ? "Request Header Fields Too Large" : "Bad Request"}\r\n` +
          `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    },
  });
  app.decorateRequest("principal", null);
  // Hooks on every request are callback-style: an async hook costs a promise per request, which
  // measured ~10-30 % of throughput on the cheapest routes.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    // Size first, whatever the content type: an oversized body is a 413 before anything else.
    const limit = request.routeOptions.bodyLimit ?? BODY_LIMIT;
    done(Number(request.headers["content-length"] ?? 0) > limit ? tooLarge(limit) : undefined);
  });
  // While shutting down, answers close their connection: otherwise a keep-alive connection that
  // carried an in-flight request would hold the process open until its idle timeout.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
    hub.closeAll(); // streams never end by themselves
  });
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    done(null, payload);
  });
  registerJsonParser(app);
  registerErrorHandling(app);

  await app.register(async (scope) => healthRoutes(scope, deps));
  await app.register(async (scope) => bellRoutes(scope, bell ?? undefined));
  await app.register(async (scope) => {
    scope.addHook("preValidation", userAuth(deps));
    await feedRoutes(scope, deps, pollIntervalS);
    await orgKeyRoutes(scope, deps);
    await webhookRoutes(scope, deps);
  });
  await app.register(async (scope) => streamRoutes(scope, deps, hub, streamOptions));
  await app.register(async (scope) => {
    scope.addHook("preValidation", adminAuth(adminToken));
    await adminRoutes(scope, deps);
  });
  return app;
}
