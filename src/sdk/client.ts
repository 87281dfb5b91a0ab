/**
 * `belfry/client`: the feed, settings, webhooks and live stream of one user, over fetch. Runs in
 * Node ≥ 20 and in browsers: nothing here imports a Node built-in or server code at run time.
 *
 * @example
 * import { BelfryClient } from "belfry/client";
 * const client = new BelfryClient({ baseUrl: "https://belfry.example.com", token: process.env.BELFRY_KEY });
 * const { count } = await client.notifications.unreadCount();
 */
import { type ClientOptions, HttpCore } from "./http.js";
import { NotificationsApi, type RequestOptions } from "./notifications-api.js";
import { feedStream, type StreamOptions } from "./stream.js";
import type { ApiKey, FeedSettings, FeedSettingsUpdate, FeedStreamEvent, StreamTicket } from "./types.js";
import { WebhooksApi } from "./webhooks-api.js";

export {
  ApiError,
  AuthenticationError,
  BelfryError,
  ConflictError,
  ConnectionError,
  InvalidRequestError,
  NotFoundError,
  PermissionError,
  RateLimitError,
  TimeoutError,
  UnavailableError,
} from "./errors.js";
export type { ClientOptions } from "./http.js";
export type { RequestOptions, UnreadCountPoll } from "./notifications-api.js";
export type { StreamOptions } from "./stream.js";
export type * from "./types.js";
export { NotificationsApi, WebhooksApi };

/**
 * A user's client: authenticates with a user key (`bf_…`) or a browser session token (`bfs_…`).
 * Request and answer fields keep the API's own (snake_case) names.
 *
 * @example
 * const client = new BelfryClient({ baseUrl: "http://127.0.0.1:8080", token: "bf_…", maxRetries: 3 });
 * for await (const event of client.stream()) {
 *   if (event.type === "unread-count") console.log("unread:", event.data.count);
 * }
 */
export class BelfryClient {
  /** The feed: list, iterate, unread count, mark read. */
  readonly notifications: NotificationsApi;
  /** Webhook endpoints and their deliveries. */
  readonly webhooks: WebhooksApi;
  /** The user's mutes. */
  readonly settings: {
    /**
     * The muted feed types.
     *
     * @example
     * const { muted_types } = await client.settings.get();
     */
    get(options?: RequestOptions): Promise<FeedSettings>;
    /**
     * Replaces the muted feed types (muted types are not added to the feed from then on).
     *
     * @example
     * await client.settings.put({ muted_types: ["system.balance.notify.dispatched"] });
     */
    put(settings: FeedSettingsUpdate, options?: RequestOptions): Promise<FeedSettings>;
  };
  /** Org administration a user may do with their own key. */
  readonly orgKeys: {
    /**
     * Revokes an org key, as an owner or admin of that org. Idempotent.
     *
     * @example
     * const key = await client.orgKeys.revoke(5, 31);
     */
    revoke(orgId: number, keyId: number, options?: RequestOptions): Promise<ApiKey>;
  };
  readonly #core: HttpCore;

  constructor(options: ClientOptions) {
    const core = new HttpCore(options);
    this.#core = core;
    this.notifications = new NotificationsApi(core);
    this.webhooks = new WebhooksApi(core);
    const settingsPath = "/api/v1/me/notification-settings";
    this.settings = {
      get: async (options = {}) =>
        (await core.request<FeedSettings>({ method: "GET", path: settingsPath, retry: "safe", ...options }))
          .data,
      put: async (settings, options = {}) =>
        (
          await core.request<FeedSettings>({
            method: "PUT",
            path: settingsPath,
            body: settings,
            retry: "safe",
            ...options,
          })
        ).data,
    };
    this.orgKeys = {
      revoke: async (orgId, keyId, options = {}) =>
        (
          await core.request<ApiKey>({
            method: "POST",
            path: `/api/v1/orgs/${encodeURIComponent(String(orgId))}/keys/${encodeURIComponent(String(keyId))}/revoke`,
            retry: "safe",
            ...options,
          })
        ).data,
    };
  }

  /**
   * A 60-second ticket for `GET …/stream?ticket=`, for an EventSource (which cannot send the
   * Authorization header); it stays good for EventSource's reconnects while its stream lives, one
   * open stream at a time. `stream()` does not need one.
   *
   * @example
   * const { ticket } = await client.streamTicket();
   * const source = new EventSource(`${baseUrl}/api/v1/me/notifications/stream?ticket=${ticket}`);
   */
  async streamTicket(options: RequestOptions = {}): Promise<StreamTicket> {
    const { data } = await this.#core.request<StreamTicket>({
      method: "POST",
      path: "/api/v1/me/notifications/stream-tickets",
      // An unused ticket grants nothing and expires in a minute: asking twice is harmless.
      retry: "safe",
      signal: options.signal,
    });
    return data;
  }

  /**
   * The live stream as an async iterable of typed events: `unread-count` on connect and after
   * every change, each new row as `notification`, `read`, and `reset` when too much was missed
   * to replay. Reconnects by itself after a drop and resumes after the last event seen, so
   * nothing is missed or repeated; ends when `signal` aborts (or the loop breaks); a refused key
   * ends it with AuthenticationError / PermissionError.
   *
   * @example
   * const controller = new AbortController();
   * for await (const event of client.stream({ signal: controller.signal })) {
   *   if (event.type === "notification") console.log(event.data.title);
   *   if (event.type === "unread-count") badge.textContent = String(event.data.count);
   * }
   */
  stream(options: StreamOptions = {}): AsyncGenerator<FeedStreamEvent> {
    return feedStream(this.#core, options);
  }
}
