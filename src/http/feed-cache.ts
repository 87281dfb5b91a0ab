import type { FastifyReply, FastifyRequest } from "fastify";
import { Type } from "typebox";
import type { Headers } from "./operation.js";

/**
 * Cheap polling: feed answers carry a weak ETag made of the user and their feed version,
 * which grows with every change to their rows or counts. A poll that sends it back in
 * `If-None-Match` gets a bodiless 304 after reading the version alone.
 */
export const feedEtag = (userId: number, version: number) => `W/"u${userId}.v${version}"`;

/** True when the request's `If-None-Match` names this ETag (weak comparison, `*` included). */
export function notModified(request: FastifyRequest, etag: string): boolean {
  const header = request.headers["if-none-match"];
  if (!header) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.split(",").some((tag) => tag.trim() === "*" || opaque(tag) === opaque(etag));
}

/** The caching headers of every feed read (200 or 304). */
export function setFeedHeaders(
  reply: FastifyReply,
  etag: string,
  version: number,
  pollIntervalS: number,
): void {
  reply.headers({
    etag,
    "x-feed-version": String(version),
    "x-poll-interval": String(pollIntervalS),
    "cache-control": "private, no-cache",
  });
}

/** The caching headers, as the API reference documents them (on 200 and 304 alike). */
export const FEED_CACHE_HEADERS: Headers = {
  ETag: Type.String({
    description:
      'Weak ETag of the user\'s feed version, W/"u<user>.v<version>": send it back in If-None-Match.',
  }),
  "X-Feed-Version": Type.Integer({ description: "The user's feed version; it grows with every change." }),
  "X-Poll-Interval": Type.Integer({ description: "Seconds a poller should wait before asking again." }),
  "Cache-Control": Type.String({ description: "private, no-cache" }),
};

/** The conditional request header of the feed reads. */
export const ConditionalHeaders = Type.Object({
  "If-None-Match": Type.Optional(
    Type.String({
      description:
        "An ETag from an earlier answer (weak comparison; * and lists accepted): 304 while it is current.",
    }),
  ),
});
