import type fc from "fast-check";
import { expect } from "vitest";
import type { FeedModel } from "./feed-model.js";
import { type Harness, isEnvelope, type Response } from "./harness.js";

/** The real side of the feed model suite: the API under test and the check run after every step. */

export const FEED = "/api/v1/me/notifications";

/** The injected clock: one second further at every step. */
export const clock = { now: 1_780_000_000 };
export const tick = () => ++clock.now;

export type Cmd = fc.AsyncCommand<FeedModel, Real>;

export interface Real {
  h: Harness;
  users: { id: number; key: string }[];
  /** Every ETag seen in this run, with where: ETags of different feeds or versions must differ. */
  etags: Map<string, string>;
  /** The highest row id bound so far. */
  maxId: number;
}

export const counts = { requests: 0, steps: 0, runs: 0 };

export async function send(r: Real, method: string, url: string, key: string, body?: unknown, headers = {}) {
  counts.requests++;
  return r.h.request(method, url, { key, headers, ...(body !== undefined && { body }) });
}

export function expectEnvelope(res: Response, status: number, type: string): void {
  expect(isEnvelope(res, status, type), `expected ${status} ${type}, got ${res.status} ${res.text}`).toBe(
    true,
  );
}

/** After every step: each user's count, whole feed (binding new row ids) and settings. */
export async function checkAll(m: FeedModel, r: Real): Promise<void> {
  counts.steps++;
  const before = r.maxId;
  for (const [o, user] of r.users.entries()) {
    const c = await send(r, "GET", `${FEED}/unread-count`, user.key);
    expect(c.status).toBe(200);
    expect(c.json, `unread count of user ${o}`).toEqual({ count: m.unread(o) });
    m.observeEtag(o, "count", c.headers.etag, r.etags);
    const items: { id: number }[] = [];
    for (let page = 1; ; page++) {
      const query = `?page=${page}&page_size=200`;
      const l = await send(r, "GET", `${FEED}${query}`, user.key);
      expect(l.status).toBe(200);
      m.observeEtag(o, `list${query}`, l.headers.etag, r.etags);
      items.push(...l.json.items);
      if (l.json.items.length < 200) break;
    }
    r.maxId = Math.max(
      r.maxId,
      m.bind(
        o,
        items.map((i) => i.id),
        before,
      ),
    );
    const expected = m.page(o, { page: 1, pageSize: Number.MAX_SAFE_INTEGER });
    expect(items, `feed of user ${o}`).toEqual(expected.items);
    const s = await send(r, "GET", "/api/v1/me/notification-settings", user.key);
    expect(s.json).toEqual({ muted_types: m.muted[o] });
  }
}
