import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * Cheap polling (issue 4): feed answers carry a weak ETag made of the user and their feed version,
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
