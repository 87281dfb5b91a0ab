import type { FastifyReply, FastifyRequest } from "fastify";
import type { Deps } from "../deps.js";
import { forbidden, unauthenticated } from "../errors.js";
import {
  authenticate,
  authenticateWith,
  bearerToken,
  type CredentialRead,
  type Principal,
} from "../identity/authenticate.js";
import { hashSecret, sameSecret } from "../identity/key-secret.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by {@link userAuth} on `/api/v1/*` routes. */
    principal: Principal | null;
    /** The rows of the route's `credentialRead`, read with the credential (see {@link userAuth}). */
    credentialRows: unknown[] | null;
    /** The last secret {@link hashOnce} hashed for this request, and its hash. */
    secretHash: { secret: string; hash: string } | null;
  }
  interface FastifyContextConfig {
    /**
     * What the route reads in the authenticating statement itself (a poll's count, a page), if
     * anything: one round trip for the whole answer. Undefined → the credential alone.
     */
    credentialRead?: (request: FastifyRequest) => CredentialRead<unknown> | undefined;
  }
}

/**
 * An `onRequest` hook for user routes: resolves the Bearer key or session token to its user. It
 * runs once the route is matched (unknown routes are a 404 first) and after the size check (413
 * first), but before the body is read: a stranger cannot make the server hold a body. A route
 * whose config names a `credentialRead` gets its answer's data from the same statement.
 */
export const userAuth = (deps: Deps) => async (request: FastifyRequest, _reply: FastifyReply) => {
  const read = request.routeOptions.config.credentialRead?.(request);
  const hash = (secret: string) => hashOnce(request, secret);
  if (read === undefined) {
    request.principal = await authenticate(deps, request.headers.authorization, hash);
    return;
  }
  const { principal, rows } = await authenticateWith(deps, request.headers.authorization, read, hash);
  request.principal = principal;
  request.credentialRows = rows;
};

/**
 * The hash of a secret the request presented, computed once per request: the rate limiter counts
 * the credential by it, and authentication looks the credential up by it.
 */
export function hashOnce(request: FastifyRequest, secret: string): string {
  if (request.secretHash?.secret !== secret) request.secretHash = { secret, hash: hashSecret(secret) };
  return request.secretHash.hash;
}

/**
 * A hook, after {@link userAuth}, for routes a browser session may not use
 * (webhooks, org administration): a valid session is a 403 saying so; a bad one was a 401 already.
 */
export const refuseSessions = (message: string) => async (request: FastifyRequest, _reply: FastifyReply) => {
  if (request.principal?.kind === "session") throw forbidden(message);
};

/** An `onRequest` hook for `/admin/v1/*`: the Bearer token must be `BELFRY_ADMIN_TOKEN`. */
export const adminAuth = (adminToken: string) => async (request: FastifyRequest, _reply: FastifyReply) => {
  const token = bearerToken(request.headers.authorization);
  if (token === undefined || !sameSecret(token, adminToken))
    throw unauthenticated("Invalid or missing admin token.");
};

/** The authenticated user of a user route. */
export function principal(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error("principal() called on a route without userAuth");
  return request.principal;
}
