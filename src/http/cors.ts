import cors, { type FastifyCorsOptions } from "@fastify/cors";
import type { FastifyInstance, FastifyRequest } from "fastify";

/**
 * The paths browsers may call from another origin: the user's own API and the bell's script —
 * but not webhook management, which a browser session may not use and keys (servers) do not need
 * CORS for. A rule on the path, not a list of routes, so a route added later under one of these
 * (such as `GET /bell.js`) is covered by registering it, and nothing else ever is.
 */
const PATHS = ["/bell.js"];
const PREFIXES = ["/api/v1/me/"];
const EXCLUDED = ["/api/v1/me/webhooks"];

/** What browser code may send, and read, besides the safelisted headers. */
const ALLOWED_HEADERS = ["Authorization", "Content-Type", "If-None-Match", "Last-Event-ID"];
const EXPOSED_HEADERS = [
  "ETag",
  "X-Feed-Version",
  "X-Poll-Interval",
  "Retry-After",
  "X-Request-Id",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
];
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/** Seconds a browser may reuse a preflight answer (Chromium caps it at 7200). */
const MAX_AGE_S = 7200;

/** True when `path` (no query string) is one browsers may call cross-origin. */
export function corsPath(path: string): boolean {
  const under = (prefix: string) => path === prefix || path.startsWith(`${prefix}/`);
  if (PATHS.includes(path)) return true;
  return PREFIXES.some((prefix) => path.startsWith(prefix)) && !EXCLUDED.some(under);
}

/**
 * CORS for `origins` (exact strings, as `Origin` carries them), through `@fastify/cors`:
 * - on a CORS path ({@link corsPath}), a request from a listed origin gets `Access-Control-Allow-Origin: <origin>`,
 *   `Vary: Origin` and the exposed headers on every answer (errors and 304s too; the stream copies
 *   them, see routes/stream.ts); its preflight (OPTIONS with `Access-Control-Request-Method`) is a
 *   204 with the allowed methods and headers, answered before authentication;
 * - any other origin, a request without one, and every other path get no CORS headers; an OPTIONS
 *   that is not an allowed preflight stays what it was, a 404 envelope.
 * No credentials mode: tokens travel in `Authorization`, never in cookies. Register it before
 * the other `onRequest` hooks so even a 413 carries the headers. With no origins, nothing is
 * registered at all.
 */
export async function registerCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  const disabled: FastifyCorsOptions = { origin: false };
  const enabled = (origin: string): FastifyCorsOptions => ({
    origin,
    methods: METHODS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: MAX_AGE_S,
    credentials: false,
  });
  const delegator = (
    request: FastifyRequest,
    done: (error: Error | null, options: FastifyCorsOptions) => void,
  ) => {
    const origin = request.headers.origin;
    const path = request.url.split("?", 1)[0] ?? "";
    // An OPTIONS without Access-Control-Request-Method is no preflight: it stays a 404.
    const notPreflight = request.method === "OPTIONS" && !request.headers["access-control-request-method"];
    if (origin === undefined || !allowed.has(origin) || !corsPath(path) || notPreflight)
      return done(null, disabled);
    done(null, enabled(origin));
  };
  await app.register(cors, { delegator });
  // Routes registered outside the CORS paths skip the plugin entirely, so their answers carry not
  // even `Vary: Origin`. The plugin's own `OPTIONS *` route is left to the delegator.
  app.addHook("onRoute", (route) => {
    if (route.url === "*" || route.url === "/*" || corsPath(route.url)) return;
    route.config = { ...(route.config as object), cors: false } as typeof route.config;
  });
}
