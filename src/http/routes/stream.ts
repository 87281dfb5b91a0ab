import type { OutgoingHttpHeaders } from "node:http";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Deps } from "../../deps.js";
import { ApiError, invalidRequest } from "../../errors.js";
import { authenticate, credentialOf } from "../../identity/authenticate.js";
import { parseId } from "../../ids.js";
import { type Query, singleParam } from "../../query-params.js";
import { type StreamHub, type StreamOptions, serveFeedStream } from "../../stream/feed-stream.js";
import { createTicket, redeemTicket, StreamTicket } from "../../stream/tickets.js";
import { principal, userAuth } from "../auth.js";
import { noBody } from "../no-body.js";
import type { Limiter } from "../rate-limits.js";

/**
 * The live stream (`GET /api/v1/me/notifications/stream`) and its tickets. The stream takes the
 * usual Bearer key or session token, or `?ticket=` for browsers, whose EventSource cannot send
 * headers.
 */
export async function streamRoutes(
  app: FastifyInstance,
  deps: Deps,
  hub: StreamHub,
  options: StreamOptions,
  limiter: Limiter,
) {
  app.post(
    "/api/v1/me/notifications/stream-tickets",
    {
      onRequest: limiter.guardAuthentication(userAuth(deps)),
      preValidation: noBody,
      schema: { response: { 200: StreamTicket } },
    },
    (request) => createTicket(deps, principal(request)),
  );

  app.get(
    "/api/v1/me/notifications/stream",
    {
      // A HEAD would open a stream that never ends; it is not a route.
      exposeHeadRoute: false,
      onRequest: limiter.guardAuthentication(async (request) => {
        const ticket = singleParam(request.query as Query, "ticket");
        request.principal =
          ticket !== undefined
            ? await redeemTicket(deps, ticket)
            : await authenticate(deps, request.headers.authorization);
      }),
    },
    async (request, reply) => {
      const lastEventId = resumeFrom(request);
      const credential = credentialOf(principal(request));
      if (hub.openFor(credential) >= options.maxPerCredential)
        throw new ApiError(
          429,
          "rate_limit_error",
          `At most ${options.maxPerCredential} live streams may be open for one credential; close one first.`,
          { "retry-after": "5" },
        );
      // A hijacked reply sends none of the headers set on it so far, so they are carried over:
      // X-Request-Id, the rate-limit headers and, for an allowed origin, the CORS headers.
      const headers = reply.getHeaders() as OutgoingHttpHeaders;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...headers,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        connection: "keep-alive",
        "x-accel-buffering": "no",
        "x-request-id": request.id,
      });
      res.write("retry: 2000\n\n");
      await serveFeedStream(deps, hub, principal(request), res, lastEventId, options);
    },
  );
}

/** `Last-Event-ID` (header) or `?last_event_id=`: a notification id, or nothing. */
function resumeFrom(request: FastifyRequest): number | undefined {
  const header = request.headers["last-event-id"];
  const raw =
    typeof header === "string" && header !== ""
      ? header
      : singleParam(request.query as Query, "last_event_id");
  if (raw === undefined) return undefined;
  if (raw === "0") return 0;
  const id = parseId(raw);
  if (id === 0) throw invalidRequest("Last-Event-ID must be a notification id (a positive integer)");
  return id;
}
