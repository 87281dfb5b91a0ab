import type { HttpCore } from "./http.js";
import type {
  MarkAllReadResult,
  MarkReadResult,
  Notification,
  NotificationFilter,
  NotificationPage,
  UnreadCount,
} from "./types.js";

/** Per-call options of every SDK method. */
export interface RequestOptions {
  /** Aborts the call (and any retry wait); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The answer of a conditional unread-count read. */
export interface UnreadCountPoll {
  /** false: the answer was 304 — nothing changed since the `etag` sent. */
  changed: boolean;
  /** The unread count; undefined when unchanged. */
  count: number | undefined;
  /** Send this back next time. */
  etag: string | undefined;
  /** The feed version (`X-Feed-Version`), which grows with every change. */
  version: number | undefined;
  /** How long the server advises waiting before the next poll (`X-Poll-Interval`). */
  pollIntervalSeconds: number | undefined;
}

const BASE = "/api/v1/me/notifications";

/**
 * The signed-in user's feed: `client.notifications`.
 *
 * @example
 * const { items } = await client.notifications.list({ unread: true });
 */
export class NotificationsApi {
  readonly #core: HttpCore;

  /** @internal Built by BelfryClient. */
  constructor(core: HttpCore) {
    this.#core = core;
  }

  /**
   * One page of the feed, newest first, with the total matching the filter.
   *
   * @example
   * const { items, total } = await client.notifications.list({ unread: true, page_size: 20 });
   */
  async list(filter: NotificationFilter = {}, options: RequestOptions = {}): Promise<NotificationPage> {
    const { data } = await this.#core.request<NotificationPage>({
      method: "GET",
      path: BASE,
      query: { ...filter },
      retry: "safe",
      signal: options.signal,
    });
    return data;
  }

  /**
   * Every notification matching the filter, page after page (from `filter.page`, default 1),
   * until the last. Rows that slide onto a later page while iterating (new notifications push
   * older ones down) are not yielded twice.
   *
   * @example
   * for await (const n of client.notifications.iterate({ type: "system.payment.received" })) {
   *   console.log(n.id, n.title);
   * }
   */
  async *iterate(
    filter: NotificationFilter = {},
    options: RequestOptions = {},
  ): AsyncGenerator<Notification> {
    const seen = new Set<number>();
    const pageSize = filter.page_size ?? 100;
    for (let page = filter.page ?? 1; ; page++) {
      const result = await this.list({ ...filter, page, page_size: pageSize }, options);
      for (const item of result.items) {
        if (seen.has(item.id)) continue;
        seen.add(item.id);
        yield item;
      }
      if (result.items.length < result.page_size || page * result.page_size >= result.total) return;
    }
  }

  /**
   * The unread count (`{count}`), from Belfry's kept counters: cheap to call often.
   *
   * @example
   * const { count } = await client.notifications.unreadCount();
   */
  async unreadCount(options: RequestOptions = {}): Promise<UnreadCount> {
    const { data } = await this.#core.request<UnreadCount>({
      method: "GET",
      path: `${BASE}/unread-count`,
      retry: "safe",
      signal: options.signal,
    });
    return data;
  }

  /**
   * The unread count only if it changed since `etag` (a 304 costs the server one indexed read),
   * with the poll interval the server advises: the building block of a cheap poller.
   *
   * @example
   * let etag;
   * for (;;) {
   *   const poll = await client.notifications.pollUnreadCount(etag);
   *   if (poll.changed) render(poll.count);
   *   etag = poll.etag;
   *   await new Promise((r) => setTimeout(r, (poll.pollIntervalSeconds ?? 60) * 1000));
   * }
   */
  async pollUnreadCount(etag?: string, options: RequestOptions = {}): Promise<UnreadCountPoll> {
    const { data, status, headers } = await this.#core.request<UnreadCount | undefined>({
      method: "GET",
      path: `${BASE}/unread-count`,
      retry: "safe",
      headers: etag ? { "if-none-match": etag } : {},
      allowNotModified: true,
      signal: options.signal,
    });
    const number = (name: string) => {
      const value = headers.get(name);
      return value === null || !/^\d+$/.test(value) ? undefined : Number(value);
    };
    return {
      changed: status !== 304,
      count: data?.count,
      etag: headers.get("etag") ?? etag,
      version: number("x-feed-version"),
      pollIntervalSeconds: number("x-poll-interval"),
    };
  }

  /**
   * Marks one notification read. Idempotent: on a row already read it returns the original
   * `read_at`. Another user's id, or one that does not exist, is a NotFoundError.
   *
   * @example
   * const { read_at } = await client.notifications.markRead(42);
   */
  async markRead(id: number, options: RequestOptions = {}): Promise<MarkReadResult> {
    const { data } = await this.#core.request<MarkReadResult>({
      method: "POST",
      path: `${BASE}/${encodeURIComponent(String(id))}/mark-read`,
      retry: "safe",
      signal: options.signal,
    });
    return data;
  }

  /**
   * Marks every unread notification read; `marked_read` is how many this call flipped.
   *
   * @example
   * const { marked_read } = await client.notifications.markAllRead();
   */
  async markAllRead(options: RequestOptions = {}): Promise<MarkAllReadResult> {
    const { data } = await this.#core.request<MarkAllReadResult>({
      method: "POST",
      path: `${BASE}/mark-all-read`,
      retry: "safe",
      signal: options.signal,
    });
    return data;
  }
}
