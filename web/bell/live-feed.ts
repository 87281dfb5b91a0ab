import { type FeedClient, FeedError, type Notification } from "./feed-client.js";

/** A change, as the leader tab hears it and relays it to the others. */
export type LiveMessage =
  | { k: "notification"; n: Notification }
  | { k: "read"; ids: number[] | "all" }
  | { k: "count"; count: number; version?: number }
  /** Something may have been missed (a reconnect, a reset, a poll saw a change): refetch. */
  | { k: "resync" };

/** How this tab hears of changes: its own stream, its own polling, another tab, or not at all. */
export type Connection = "stream" | "polling" | "relay" | "paused";

export interface LiveOptions {
  client: FeedClient;
  /** The base URL and the user: names the lock and the channel the tabs share. */
  scope: string;
  /** The unread count's last ETag, for conditional polls. */
  etag?: string;
  /** Seconds between polls (`X-Poll-Interval`). */
  interval: number;
  onMessage(message: LiveMessage): void;
  onConnection(connection: Connection): void;
  /** The token was refused for good: nothing more is tried. */
  onRefused(error: FeedError): void;
}

const refused = (error: unknown): error is FeedError =>
  error instanceof FeedError && (error.status === 401 || error.status === 403);

/**
 * Live updates for one user, shared by every tab of the browser. Visible tabs queue for a Web
 * Lock; the holder — the leader — keeps the one stream (EventSource with a ticket), falls back to
 * ETag polling while the stream is down, and relays every change over a BroadcastChannel, so the
 * other tabs keep their badge without a connection of their own. A hidden tab makes no requests:
 * it steps down (a visible tab takes over) and only listens to the channel. When the leader tab
 * closes, its lock is released and the next tab in the queue leads.
 */
export class LiveFeed {
  readonly #o: LiveOptions;
  #channel: BroadcastChannel | undefined;
  /** True while this tab may relay: it leads through the lock, so no other tab does. */
  #shared = false;
  #queued: AbortController | undefined;
  #resign: (() => void) | undefined;
  #leading = false;
  #source: EventSource | undefined;
  /** Bumped whenever the connection is dropped, so late callbacks of an old one do nothing. */
  #run = 0;
  #failures = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #pollRun = 0;
  #polling = false;
  #etag: string | undefined;
  #interval: number;
  #lastEventId: string | undefined;
  #stopped = false;

  constructor(options: LiveOptions) {
    this.#o = options;
    this.#etag = options.etag;
    this.#interval = options.interval;
  }

  start(): void {
    if (typeof BroadcastChannel !== "undefined" && navigator.locks) {
      this.#shared = true;
      this.#channel = new BroadcastChannel(`belfry-bell:${this.#o.scope}`);
      this.#channel.onmessage = (event: MessageEvent<LiveMessage>) => this.#hear(event.data);
    }
    document.addEventListener("visibilitychange", this.#onVisibility);
    this.#onVisibility();
  }

  stop(): void {
    this.#stopped = true;
    document.removeEventListener("visibilitychange", this.#onVisibility);
    this.#standDown();
    this.#channel?.close();
  }

  #onVisibility = () => {
    if (document.visibilityState === "visible") this.#elect();
    else this.#standDown();
  };

  #hear(message: LiveMessage): void {
    if (message.k === "notification") this.#lastEventId = String(message.n.id);
    this.#o.onMessage(message);
  }

  #emit(message: LiveMessage): void {
    this.#hear(message);
    if (this.#shared && this.#leading) this.#channel?.postMessage(message);
  }

  #elect(): void {
    if (this.#stopped || this.#leading || this.#queued) return;
    if (!this.#shared) {
      this.#lead();
      return;
    }
    const queued = new AbortController();
    this.#queued = queued;
    this.#o.onConnection("relay");
    navigator.locks
      .request(`belfry-bell:${this.#o.scope}`, { signal: queued.signal }, () => this.#lead())
      .catch(() => {}); // aborted: the page was hidden before this tab's turn came
  }

  /** Leads until `#standDown`; the returned promise holds the lock until then. */
  #lead(): Promise<void> {
    this.#leading = true;
    void this.#connect();
    return new Promise((resolve) => {
      this.#resign = resolve;
    });
  }

  #standDown(): void {
    this.#queued?.abort();
    this.#queued = undefined;
    this.#leading = false;
    this.#run++;
    this.#source?.close();
    this.#source = undefined;
    clearTimeout(this.#retryTimer);
    this.#stopPolling();
    this.#resign?.();
    this.#resign = undefined;
    this.#o.onConnection("paused");
  }

  async #connect(): Promise<void> {
    const run = ++this.#run;
    let url: string;
    try {
      url = await this.#o.client.streamUrl(this.#lastEventId);
    } catch (error) {
      if (run === this.#run) this.#failed(error);
      return;
    }
    if (run !== this.#run) return;
    const source = new EventSource(url);
    this.#source = source;
    const on = (type: string, handle: (data: never) => void) =>
      source.addEventListener(type, (event) => {
        if (run === this.#run) handle(JSON.parse((event as MessageEvent<string>).data || "null") as never);
      });
    on("notification", (n: Notification) => this.#emit({ k: "notification", n }));
    on("read", (d: { ids?: number[]; all?: true }) =>
      this.#emit({ k: "read", ids: d.all ? "all" : (d.ids ?? []) }),
    );
    on("unread-count", (d: { count: number; version: number }) =>
      this.#emit({ k: "count", count: d.count, version: d.version }),
    );
    on("reset", () => this.#emit({ k: "resync" }));
    source.addEventListener("open", () => {
      if (run !== this.#run) return;
      this.#failures = 0;
      this.#stopPolling();
      this.#o.onConnection("stream");
      // Rows missed while disconnected are replayed (Last-Event-ID); reads are not: refetch.
      this.#emit({ k: "resync" });
    });
    source.addEventListener("error", () => {
      if (run !== this.#run) return;
      // While CONNECTING the browser retries by itself (same ticket, Last-Event-ID); poll
      // meanwhile. Once it gives up (CLOSED: the ticket expired or was refused) or keeps
      // failing, reopen with a fresh ticket after a backoff.
      this.#failures++;
      this.#startPolling();
      if (source.readyState === EventSource.CLOSED || this.#failures >= 3) {
        source.close();
        this.#retry();
      }
    });
  }

  #failed(error: unknown): void {
    if (refused(error)) {
      this.#standDown();
      this.#o.onRefused(error);
      return;
    }
    this.#failures++;
    this.#startPolling();
    this.#retry();
  }

  #retry(): void {
    clearTimeout(this.#retryTimer);
    const delay = Math.min(60_000, 1000 * 2 ** Math.min(this.#failures, 6)) * (0.5 + Math.random() / 2);
    this.#retryTimer = setTimeout(() => void this.#connect(), delay);
  }

  #startPolling(): void {
    if (this.#polling || !this.#leading) return;
    this.#polling = true;
    this.#o.onConnection("polling");
    const run = ++this.#pollRun;
    const tick = async () => {
      let next = this.#interval;
      try {
        const r = await this.#o.client.count(this.#etag);
        if (run !== this.#pollRun) return;
        if (r.interval) this.#interval = Math.min(3600, Math.max(1, r.interval));
        next = this.#interval;
        if (r.count !== undefined) {
          const changed = this.#etag !== undefined && r.etag !== this.#etag;
          this.#etag = r.etag;
          this.#emit({ k: "count", count: r.count, version: r.version });
          if (changed) this.#emit({ k: "resync" });
        }
      } catch (error) {
        if (run !== this.#pollRun) return;
        if (refused(error)) return this.#failed(error);
        next = Math.min(300, this.#interval * 2);
      }
      this.#pollTimer = setTimeout(tick, next * 1000);
    };
    void tick();
  }

  #stopPolling(): void {
    this.#polling = false;
    this.#pollRun++;
    clearTimeout(this.#pollTimer);
  }
}
