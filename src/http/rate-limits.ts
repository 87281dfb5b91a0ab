import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from "fastify";
import type { Redis } from "ioredis";
import { ApiError, unavailable } from "../errors.js";
import { bearerToken } from "../identity/authenticate.js";
import { DEFAULTS } from "../settings.js";
import { hashOnce } from "./auth.js";

/** The request limits of `/api/v1/*`. */
export interface RateLimits {
  /** Requests a minute per credential (key, session, stream ticket); 0 turns the limit off. */
  perCredentialPerMinute: number;
  /** Failed authentications a minute per client address; 0 turns the limit off. */
  authFailuresPerMinute: number;
  /** Shares the counts between instances; each instance counts alone without it. */
  redis?: Redis;
  /** Prefix of the counters' Redis keys (several deployments may share one Redis). */
  namespace?: string;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  perCredentialPerMinute: DEFAULTS.limits.ratePerMinute,
  authFailuresPerMinute: DEFAULTS.limits.authFailuresPerMinute,
};

const WINDOW_MS = 60_000;

/** A limiter's verdict, as `@fastify/rate-limit`'s `createRateLimit` gives it. */
type Check = ReturnType<FastifyInstance["createRateLimit"]>;

/** What applies the limits to the routes that serve `/api/v1/*`. */
export interface Limiter {
  /**
   * Wraps an authenticating hook into the one `onRequest` hook of an `/api/v1` route, in this
   * order: the request counts against its credential's budget and gets the `RateLimit-*` headers
   * (on every answer, errors included), over the budget → 429 `rate_limit_error` with
   * `Retry-After`; a client address with too many failed authentications this minute → 429 before
   * its credential is even looked up; then `authenticate` runs, and each 401 it gives counts.
   */
  authenticated(
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>,
  ): onRequestAsyncHookHandler;
}

/**
 * Registers `@fastify/rate-limit` (its Redis store when `limits.redis` is given) and returns the
 * hooks that apply Belfry's two limits. Counting is a fixed one-minute window per credential,
 * which allows bursts up to the whole minute's budget. A limiter store that fails (Redis down)
 * answers 503 at once: ioredis is set up to fail fast rather than queue.
 */
export async function registerRateLimits(app: FastifyInstance, limits: RateLimits): Promise<Limiter> {
  await app.register(rateLimit, {
    global: false,
    timeWindow: WINDOW_MS,
    cache: 100_000,
    skipOnError: false,
    ...(limits.redis && { redis: limits.redis, nameSpace: limits.namespace ?? "belfry:rate:" }),
  });
  const perCredential = app.createRateLimit({
    max: limits.perCredentialPerMinute,
    keyGenerator: (request) => credentialKey(request),
  });
  const failures = app.createRateLimit({
    max: limits.authFailuresPerMinute,
    keyGenerator: (request) => `auth-failures:${request.ip}`,
  });

  const countFailures = limits.authFailuresPerMinute !== 0;
  return {
    authenticated: (authenticate) => async (request, reply) => {
      if (limits.perCredentialPerMinute !== 0) {
        const limit = await consult(perCredential, request);
        reply.headers({
          "ratelimit-limit": limit.max,
          "ratelimit-remaining": limit.remaining,
          "ratelimit-reset": limit.ttlInSeconds,
        });
        if (limit.isExceeded)
          throw tooManyRequests(limit.ttlInSeconds, "Too many requests for this credential");
      }
      if (countFailures) {
        const before = await consult(failures, request, false);
        if (before.remaining === 0)
          throw tooManyRequests(before.ttlInSeconds, "Too many failed authentications from this address");
      }
      try {
        await authenticate(request, reply);
      } catch (error) {
        if (countFailures && error instanceof ApiError && error.status === 401)
          await consult(failures, request);
        throw error;
      }
    },
  };
}

/** The limiter's answer, with a store failure turned into a 503. */
async function consult(check: Check, request: FastifyRequest, increment = true) {
  let limit: Awaited<ReturnType<Check>>;
  try {
    limit = await check(request, { increment });
  } catch {
    throw unavailable("The rate limiter is unavailable; retry shortly.");
  }
  if (limit.isAllowed) throw new Error("no allow-list is configured");
  return limit;
}

function tooManyRequests(retryAfterS: number, what: string): ApiError {
  const seconds = Math.max(1, retryAfterS);
  return new ApiError(429, "rate_limit_error", `${what}; retry in ${seconds} s.`, {
    "retry-after": String(seconds),
  });
}

/**
 * What a request is counted against: its Bearer credential or stream ticket, by its hash (the
 * counter's key may sit in Redis, where a secret must not), the one authentication looks it up
 * by; without either, its client address.
 */
function credentialKey(request: FastifyRequest): string {
  const secret =
    bearerToken(request.headers.authorization) ??
    ticketOf(request.query as Record<string, unknown> | undefined);
  if (secret === undefined) return `address:${request.ip}`;
  return `credential:${hashOnce(request, secret).slice(0, 32)}`;
}

function ticketOf(query: Record<string, unknown> | undefined): string | undefined {
  const ticket = query?.ticket;
  return typeof ticket === "string" && ticket !== "" ? ticket : undefined;
}
