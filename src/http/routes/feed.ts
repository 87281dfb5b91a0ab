import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Deps } from "../../deps.js";
import { MarkAllReadResult, MarkReadResult, markAllRead, markRead, NOT_YOURS } from "../../feed/mark-read.js";
import {
  listNotifications,
  NotificationPage,
  parseFeedQuery,
  UnreadCount,
  unreadCount,
} from "../../feed/notifications.js";
import { FeedSettings, getFeedSettings, putFeedSettings } from "../../feed/settings.js";
import { pathId } from "../../ids.js";
import type { Query } from "../../query-params.js";
import { principal } from "../auth.js";
import { feedEtag, notModified, setFeedHeaders } from "../feed-cache.js";
import { noBody } from "../no-body.js";

/** The seed page's four feed endpoints (SPEC §3) and the mute settings (§4). */
export async function feedRoutes(app: FastifyInstance, deps: Deps, pollIntervalS: number): Promise<void> {
  /**
   * Answers 304 when the client already has this version. The version came with the key lookup,
   * so a 304 costs that one indexed read and nothing more.
   */
  const unchanged = async (request: FastifyRequest, reply: FastifyReply, userId: number) => {
    if (!request.headers["if-none-match"]) return false;
    const version = principal(request).feedVersion;
    const etag = feedEtag(userId, version);
    if (!notModified(request, etag)) return false;
    setFeedHeaders(reply, etag, version, pollIntervalS);
    await reply.code(304).send();
    return true;
  };

  app.get(
    "/api/v1/me/notifications",
    { schema: { response: { 200: NotificationPage } } },
    async (request, reply) => {
      const { userId } = principal(request);
      const filter = parseFeedQuery(request.query as Query);
      if (await unchanged(request, reply, userId)) return reply;
      const page = await listNotifications(deps, userId, filter);
      setFeedHeaders(reply, feedEtag(userId, page.version), page.version, pollIntervalS);
      return page;
    },
  );

  app.get(
    "/api/v1/me/notifications/unread-count",
    { schema: { response: { 200: UnreadCount } } },
    async (request, reply) => {
      const { userId } = principal(request);
      if (await unchanged(request, reply, userId)) return reply;
      const { count, version } = await unreadCount(deps, userId);
      setFeedHeaders(reply, feedEtag(userId, version), version, pollIntervalS);
      return { count };
    },
  );

  app.post(
    "/api/v1/me/notifications/:id/mark-read",
    { preValidation: noBody, schema: { response: { 200: MarkReadResult } } },
    (request) => markRead(deps, principal(request).userId, pathId(request.params, "id", NOT_YOURS)),
  );

  app.post(
    "/api/v1/me/notifications/mark-all-read",
    { preValidation: noBody, schema: { response: { 200: MarkAllReadResult } } },
    (request) => markAllRead(deps, principal(request).userId),
  );

  app.get("/api/v1/me/notification-settings", { schema: { response: { 200: FeedSettings } } }, (request) =>
    getFeedSettings(deps, principal(request).userId),
  );

  app.put("/api/v1/me/notification-settings", { schema: { response: { 200: FeedSettings } } }, (request) =>
    putFeedSettings(deps, principal(request).userId, request.body),
  );
}
