import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Deps } from "../../deps.js";
import { invalidRequest } from "../../errors.js";
import { authenticateKey } from "../../identity/authenticate.js";
import { parseId } from "../../ids.js";
import { type Query, singleParam } from "../../query-params.js";
import { type StreamHub, type StreamOptions, serveFeedStream } from "../../stream/feed-stream.js";
import { createTicket, redeemTicket, StreamTicket, type TicketLease } from "../../stream/tickets.js";
import { principal, userAuth } from "../auth.js";
import { noBody } from "../no-body.js";

/**
 * The live stream (`GET /api/v1/me/notifications/stream`) and its tickets. The stream takes the
 * usual Bearer key, or `?ticket=` for browsers, whose EventSource cannot send headers.
 */
export async function streamRoutes(app: FastifyInstance, deps: Deps, hub: StreamHub, options: StreamOptions) {
  const leases = new WeakMap<FastifyRequest, TicketLease>();
  app.post(
    "/api/v1/me/notifications/stream-tickets",
    {
      preValidation: [userAuth(deps), noBody],
      schema: { response: { 200: StreamTicket } },
    },
    (request) => createTicket(deps, principal(request)),
  );

  app.get(
    "/api/v1/me/notifications/stream",
    {
      preValidation: async (request) => {
        const ticket = singleParam(request.query as Query, "ticket");
        if (ticket === undefined) {
          request.principal = await authenticateKey(deps, request.headers.authorization);
          return;
        }
        const redeemed = await redeemTicket(deps, ticket);
        request.principal = redeemed.principal;
        leases.set(request, redeemed.lease);
      },
    },
    async (request, reply) => {
      const lastEventId = resumeFrom(request);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        // Headers set by hooks before the hijack (request id, CORS) are kept.
        ...(reply.getHeaders() as Record<string, string>),
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        connection: "keep-alive",
        "x-accel-buffering": "no",
        "x-request-id": request.id,
      });
      res.write("retry: 2000\n\n");
      await serveFeedStream(deps, hub, principal(request), res, lastEventId, options, leases.get(request));
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
