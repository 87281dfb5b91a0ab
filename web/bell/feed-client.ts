/** A notification as the feed API returns it. */
export interface Notification {
  id: number;
  type: string;
  title: string;
  body: string;
  link: string | null;
  read_at: string | null;
  created_at: string;
}

export interface FeedPage {
  items: Notification[];
  total: number;
}

/** The unread count with what a poll needs next time. */
export interface Count {
  /** Undefined when the answer was 304 (nothing changed). */
  count?: number;
  version?: number;
  etag?: string;
  /** `X-Poll-Interval`, seconds. */
  interval?: number;
}

/** A refusal from Belfry, with its envelope's type (`authentication_error`, …). */
export class FeedError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const FEED = "/api/v1/me/notifications";

/**
 * The feed API for one user. A refused token (401) is replaced through `refresh` (the element's
 * `tokenProvider`) and the request retried once; concurrent refusals share one refresh. Network
 * failures reject with the browser's TypeError, which the element shows as "offline".
 */
export class FeedClient {
  #pending: Promise<string> | undefined;

  constructor(
    readonly base: string,
    private readonly token: () => string,
    /** The element's `tokenProvider`, read at the moment a token is refused (may be unset). */
    private readonly refresh: () => Promise<string> | undefined,
    private readonly setToken: (token: string) => void,
  ) {}

  async #send(method: string, path: string, etag?: string): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { authorization: `Bearer ${this.token()}` };
      if (etag) headers["if-none-match"] = etag;
      const response = await fetch(this.base + FEED + path, {
        method,
        headers,
        cache: "no-store",
        credentials: "omit",
      });
      if (response.status === 401 && attempt === 0) {
        this.#pending ??= this.refresh()?.finally(() => {
          this.#pending = undefined;
        });
        if (this.#pending) {
          this.setToken(await this.#pending);
          continue;
        }
      }
      if (response.ok || response.status === 304) return response;
      const envelope = await response.json().catch(() => undefined);
      throw new FeedError(
        response.status,
        envelope?.error?.type ?? "api_error",
        envelope?.error?.message ?? `HTTP ${response.status}`,
      );
    }
  }

  async list(page: number, pageSize: number, unread: boolean): Promise<FeedPage> {
    const query = `?page=${page}&page_size=${pageSize}${unread ? "&unread=true" : ""}`;
    return (await this.#send("GET", query)).json();
  }

  /** The unread count; with `etag`, a conditional poll that costs the server one indexed read. */
  async count(etag?: string): Promise<Count> {
    const r = await this.#send("GET", "/unread-count", etag);
    const header = (name: string) => {
      const value = Number(r.headers.get(name) ?? Number.NaN);
      return Number.isFinite(value) ? value : undefined;
    };
    const result: Count = {
      version: header("x-feed-version"),
      etag: r.headers.get("etag") ?? etag,
      interval: header("x-poll-interval"),
    };
    if (r.status === 200) result.count = (await r.json()).count;
    return result;
  }

  async markRead(id: number): Promise<{ read_at: string }> {
    return (await this.#send("POST", `/${id}/mark-read`)).json();
  }

  async markAllRead(): Promise<void> {
    await this.#send("POST", "/mark-all-read");
  }

  /** A stream URL for EventSource, with a fresh ticket; resumes after `lastEventId` when given. */
  async streamUrl(lastEventId?: string): Promise<string> {
    const { ticket } = await (await this.#send("POST", "/stream-tickets")).json();
    const resume = lastEventId ? `&last_event_id=${encodeURIComponent(lastEventId)}` : "";
    return `${this.base}${FEED}/stream?ticket=${encodeURIComponent(ticket)}${resume}`;
  }
}
