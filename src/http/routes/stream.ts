import type { OutgoingHttpHeaders } from "node:http";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type } from "typebox";
import type { Deps } from "../../deps.js";
import { ApiError, invalidRequest } from "../../errors.js";
import { authenticate, credentialOf } from "../../identity/authenticate.js";
import { parseId } from "../../ids.js";
import { type Query, queryParams, StringParam } from "../../query-params.js";
import { type StreamHub, type StreamOptions, serveFeedStream } from "../../stream/feed-stream.js";
import { createTicket, redeemTicket, StreamTicket, type TicketLease } from "../../stream/tickets.js";
import { hashOnce, principal, userAuth } from "../auth.js";
import { noBody } from "../no-body.js";
import { operation } from "../operation.js";
import type { Limiter } from "../rate-limits.js";

const LAST_EVENT_ID =
  "Resume after this notification id: the rows after it are replayed first, in id order (0 replays from the start). More than 1,000 missed rows, or an id beyond the newest, gets event reset and the stream goes on from now.";

const StreamQuery = Type.Object({
  ticket: StringParam(
    "A ticket from POST /api/v1/me/notifications/stream-tickets (bft_…), for clients that cannot send an Authorization header (browsers' EventSource). Good for reconnects until it expires (one open stream at a time), 60 s after it was issued or its stream was last seen; it acts as the key or session that asked for it. Needed when no Authorization header is sent.",
  ),
  last_event_id: StringParam(
    `A notification id, or 0 (the Last-Event-ID header wins when both are sent). ${LAST_EVENT_ID}`,
  ),
});
const readStream = queryParams(StreamQuery);

const StreamHeaders = Type.Object({
  "Last-Event-ID": Type.Optional(
    Type.String({
      description: `What EventSource sends when it reconnects: a notification id, or 0. ${LAST_EVENT_ID}`,
    }),
  ),
});

const STREAM_EVENTS = `Server-Sent Events (retry: 2000):
- \`unread-count\` \`{"count", "version"}\` on connect, and after every change to the feed from any client or instance;
- \`notification\` — a new row, as the list returns it; its SSE \`id:\` is the row's id;
- \`read\` \`{"ids": [...]}\` or \`{"all": true}\` when rows are marked read;
- \`reset\` \`{"last_event_id"}\` when a resume cannot be served (refetch the list);
- a \`: heartbeat\` comment every 15 s (configurable).
The stream closes when the key is revoked or the server shuts down; a client more than 1 MiB behind that does not catch up within 5 s is cut off, and reconnects with Last-Event-ID.`;

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
  const leases = new WeakMap<FastifyRequest, TicketLease>();
  app.post(
    "/api/v1/me/notifications/stream-tickets",
    {
      onRequest: limiter.authenticated(userAuth(deps)),
      preValidation: noBody,
      schema: operation({
        operationId: "createStreamTicket",
        summary: "Get a stream ticket",
        description:
          "A ticket to open the stream with ?ticket= where an Authorization header cannot be sent (EventSource). Valid 60 s, and good for EventSource's reconnects while its stream lives (one open stream per ticket). Takes no body.",
        tag: "Stream",
        auth: "keyOrSession",
        body: "none",
        success: { status: 200, description: "The ticket.", schema: StreamTicket },
      }),
    },
    (request) => createTicket(deps, principal(request)),
  );

  app.get(
    "/api/v1/me/notifications/stream",
    {
      // A HEAD would open a stream that never ends; it is not a route.
      exposeHeadRoute: false,
      schema: operation({
        operationId: "streamNotifications",
        summary: "Stream feed changes",
        description: `Live updates of the user's feed, with the usual Authorization header or a ?ticket=. ${STREAM_EVENTS}`,
        tag: "Stream",
        auth: "stream",
        querystring: StreamQuery,
        headers: StreamHeaders,
        success: {
          status: 200,
          description: "The stream, open until the client leaves.",
          schema: Type.String({ description: STREAM_EVENTS }),
          contentType: "text/event-stream",
          headers: { "Cache-Control": Type.String({ description: "no-cache" }) },
        },
        errors: {
          400: "A malformed Last-Event-ID or last_event_id, or ticket given more than once.",
          429: "Or this credential already holds 10 open streams on this instance.",
        },
      }),
      onRequest: limiter.authenticated(async (request) => {
        const ticket = readStream.ticket(request.query as Query);
        if (ticket === undefined) {
          request.principal = await authenticate(deps, request.headers.authorization, (secret) =>
            hashOnce(request, secret),
          );
          return;
        }
        const redeemed = await redeemTicket(deps, ticket);
        request.principal = redeemed.principal;
        leases.set(request, redeemed.lease);
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
      await serveFeedStream(deps, hub, principal(request), res, lastEventId, options, leases.get(request));
    },
  );
}

/** `Last-Event-ID` (header) or `?last_event_id=`: a notification id, or nothing. */
function resumeFrom(request: FastifyRequest): number | undefined {
  const header = request.headers["last-event-id"];
  const raw =
    typeof header === "string" && header !== "" ? header : readStream.last_event_id(request.query as Query);
  if (raw === undefined) return undefined;
  if (raw === "0") return 0;
  const id = parseId(raw);
  if (id === 0) throw invalidRequest("Last-Event-ID must be a notification id (a positive integer)");
  return id;
}
