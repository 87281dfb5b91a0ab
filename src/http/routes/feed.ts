import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "typebox";
import type { Deps } from "../../deps.js";
import { MarkAllReadResult, MarkReadResult, markAllRead, markRead, NOT_YOURS } from "../../feed/mark-read.js";
import {
  FeedQuery,
  listNotifications,
  NotificationPage,
  parseFeedQuery,
  UnreadCount,
} from "../../feed/notifications.js";
import {
  FeedSettings,
  getFeedSettings,
  PutFeedSettingsRequest,
  putFeedSettings,
} from "../../feed/settings.js";
import { type PageRow, pageFromRows, pageRead, withUnreadCount } from "../../identity/credential-reads.js";
import { checkedId, PathId } from "../../ids.js";
import type { Query } from "../../query-params.js";
import { principal } from "../auth.js";
import {
  ConditionalHeaders,
  FEED_CACHE_HEADERS,
  feedEtag,
  notModified,
  setFeedHeaders,
} from "../feed-cache.js";
import { noBody } from "../no-body.js";
import { operation } from "../operation.js";

const NotificationId = Type.Object({ id: PathId("The notification's id.", NOT_YOURS) });
const POLLING =
  "Answers carry a weak ETag of the user's feed version: send it back in If-None-Match and an unchanged feed answers 304 with no body, after one indexed read.";

/** The four feed endpoints behind the bell, and the mute settings. */
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
    {
      // On PostgreSQL the key, the counts and the page come in one statement (see identity/credential-reads.ts).
      // A poll sending an ETag reads the key alone, as it will most likely be a 304; so does a
      // query string that does not parse (the handler answers 400).
      config: {
        credentialRead: (request) => {
          if (request.headers["if-none-match"]) return undefined;
          try {
            return pageRead(deps, parseFeedQuery(request.query as Query));
          } catch {
            return undefined;
          }
        },
      },
      schema: operation({
        operationId: "listNotifications",
        summary: "List notifications",
        description: `The user's feed, newest first (created_at, then id, descending). total counts every row matching the filters, whatever the page; a page past the end has no items and the true total. Unknown parameters are ignored. ${POLLING}`,
        tag: "Notifications",
        auth: "keyOrSession",
        querystring: FeedQuery,
        headers: ConditionalHeaders,
        success: {
          status: 200,
          description: "One page of the feed.",
          schema: NotificationPage,
          headers: FEED_CACHE_HEADERS,
        },
        notModified: FEED_CACHE_HEADERS,
        errors: {
          400: "A query parameter out of its rules (named in the message), or read and unread both true.",
        },
      }),
    },
    async (request, reply) => {
      const { userId } = principal(request);
      const filter = parseFeedQuery(request.query as Query);
      if (await unchanged(request, reply, userId)) return reply;
      const rows = request.credentialRows as PageRow[] | null;
      const page = rows
        ? pageFromRows(rows, principal(request).feedVersion, filter)
        : await listNotifications(deps, userId, filter);
      setFeedHeaders(reply, feedEtag(userId, page.version), page.version, pollIntervalS);
      return page;
    },
  );

  app.get(
    "/api/v1/me/notifications/unread-count",
    {
      // The count comes with the key: one statement for a 200 and for a 304.
      config: { credentialRead: () => withUnreadCount },
      schema: operation({
        operationId: "getUnreadCount",
        summary: "Count unread notifications",
        description: `The badge's number, from kept counters: the cheap call to poll. ${POLLING}`,
        tag: "Notifications",
        auth: "keyOrSession",
        headers: ConditionalHeaders,
        success: {
          status: 200,
          description: "The unread count.",
          schema: UnreadCount,
          headers: FEED_CACHE_HEADERS,
        },
        notModified: FEED_CACHE_HEADERS,
      }),
    },
    async (request, reply) => {
      const { userId } = principal(request);
      if (await unchanged(request, reply, userId)) return reply;
      const [row] = request.credentialRows as { unread: number }[];
      const { feedVersion } = principal(request);
      setFeedHeaders(reply, feedEtag(userId, feedVersion), feedVersion, pollIntervalS);
      return { count: row?.unread ?? 0 };
    },
  );

  app.post(
    "/api/v1/me/notifications/:id/mark-read",
    {
      preValidation: noBody,
      schema: operation({
        operationId: "markNotificationRead",
        summary: "Mark one notification read",
        description:
          "Idempotent: a row already read keeps, and answers, its original read_at. Takes no body.",
        tag: "Notifications",
        auth: "keyOrSession",
        params: NotificationId,
        body: "none",
        success: { status: 200, description: "The row, read.", schema: MarkReadResult },
        errors: {
          404: "No such notification of the caller's: another user's, none, or an id that is not a positive integer.",
        },
      }),
    },
    (request) => markRead(deps, principal(request).userId, checkedId(request.params, "id")),
  );

  app.post(
    "/api/v1/me/notifications/mark-all-read",
    {
      preValidation: noBody,
      schema: operation({
        operationId: "markAllNotificationsRead",
        summary: "Mark every notification read",
        description:
          "Marks every unread row read in constant time, however many there are, and answers how many this call flipped (a second call answers 0). Takes no body.",
        tag: "Notifications",
        auth: "keyOrSession",
        body: "none",
        success: { status: 200, description: "How many rows were flipped.", schema: MarkAllReadResult },
      }),
    },
    (request) => markAllRead(deps, principal(request).userId),
  );

  app.get(
    "/api/v1/me/notification-settings",
    {
      schema: operation({
        operationId: "getNotificationSettings",
        summary: "Get feed settings",
        description: "The feed types muted for the user.",
        tag: "Settings",
        auth: "keyOrSession",
        success: { status: 200, description: "The settings.", schema: FeedSettings },
      }),
    },
    (request) => getFeedSettings(deps, principal(request).userId),
  );

  app.put(
    "/api/v1/me/notification-settings",
    {
      schema: operation({
        operationId: "putNotificationSettings",
        summary: "Replace feed settings",
        description:
          "Replaces the muted types. A muted type is not added to the user's feed from then on (webhooks are not affected); unmuting does not back-fill.",
        tag: "Settings",
        auth: "keyOrSession",
        body: PutFeedSettingsRequest,
        success: { status: 200, description: "The new settings.", schema: FeedSettings },
        errors: { 400: "A type that is not a feed type, or more than 100." },
      }),
    },
    (request) => putFeedSettings(deps, principal(request).userId, request.body),
  );
}
