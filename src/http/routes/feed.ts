import type { FastifyInstance } from "fastify";
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
import { noBody } from "../no-body.js";

/** The seed page's four feed endpoints (SPEC §3) and the mute settings (§4). */
export async function feedRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.get("/api/v1/me/notifications", { schema: { response: { 200: NotificationPage } } }, (request) =>
    listNotifications(deps, principal(request).userId, parseFeedQuery(request.query as Query)),
  );

  app.get(
    "/api/v1/me/notifications/unread-count",
    { schema: { response: { 200: UnreadCount } } },
    async (request) => ({
      count: await unreadCount(deps, principal(request).userId),
    }),
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
