import { FeedClient, FeedError, type Notification } from "./feed-client.js";
import { type Connection, LiveFeed, type LiveMessage } from "./live-feed.js";
import { relativeTime } from "./relative-time.js";
import { safeLink } from "./safe-link.js";
import { type Strings, stringsFor } from "./strings.js";
import { TEMPLATE } from "./template.js";

// Importing this module must not touch the DOM (server-side rendering): without HTMLElement the
// class extends a plain one and is never defined as an element.
const Base = (typeof HTMLElement === "undefined" ? class {} : HTMLElement) as typeof HTMLElement;

type ListState = "idle" | "loading" | "ready" | "offline" | "error" | "signed-out";

interface Entry {
  n: Notification;
  li: HTMLLIElement;
  button: HTMLButtonElement;
}

/** Newest first, as the feed orders: `created_at` desc, then `id` desc (RFC 3339 UTC sorts as text). */
const before = (a: Notification, b: Notification) =>
  a.created_at > b.created_at || (a.created_at === b.created_at && a.id > b.id);

const integer = (value: string | null, fallback: number, min: number, max: number) => {
  const n = Number.parseInt(value ?? "", 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
};

/**
 * `<belfry-bell base-url="https://belfry.example.com" token="bfs_…">`: the unread badge and
 * notification panel of one user, live across every tab. See the README's "The bell" section.
 */
export class BelfryBell extends Base {
  static observedAttributes = ["base-url", "token", "page-size", "max-count", "locale"];

  /** Called when the token is refused (401); the request is then retried once with its answer. */
  declare tokenProvider: (() => Promise<string>) | undefined;

  #root!: ShadowRoot;
  #token = "";
  #t: Strings = stringsFor(null).strings;
  #rtf!: Intl.RelativeTimeFormat;
  #count: number | undefined;
  #version = -1;
  #entries = new Map<number, Entry>();
  #unreadOnly = false;
  #page = 0;
  #total = 0;
  #state: ListState = "idle";
  #listRun = 0;
  #maxSeen = -1;
  #client: FeedClient | undefined;
  #live: LiveFeed | undefined;
  #connection: Connection = "paused";
  #run = 0;
  #started = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #announced: Notification[] = [];
  #announceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Keeps relative times fresh while the panel is open. */
  #clock: ReturnType<typeof setInterval> | undefined;

  /** How this tab hears of changes: `stream`, `polling`, `relay` (another tab's stream) or `paused`. */
  get connection(): Connection {
    return this.#connection;
  }

  /** The exact unread count (the badge may show `99+`). */
  get unreadCount(): number {
    return this.#count ?? 0;
  }

  #$<T extends Element = HTMLElement>(selector: string): T {
    return this.#root.querySelector(selector) as T;
  }

  connectedCallback(): void {
    if (!this.#root) {
      this.#root = this.shadowRoot ?? this.attachShadow({ mode: "open" });
      this.#root.innerHTML = TEMPLATE; // static markup, no feed data
      this.#wire();
    }
    this.#token = this.getAttribute("token") ?? "";
    this.#applyLocale();
    document.addEventListener("visibilitychange", this.#onVisibility);
    addEventListener("online", this.#resync);
    addEventListener("offline", this.#onOffline);
    this.#onVisibility();
  }

  disconnectedCallback(): void {
    document.removeEventListener("visibilitychange", this.#onVisibility);
    removeEventListener("online", this.#resync);
    removeEventListener("offline", this.#onOffline);
    this.#stop();
    this.#close(false);
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (!this.#root || old === value) return;
    if (name === "locale") this.#applyLocale();
    else if (name === "max-count") this.#renderCount();
    else if (name === "token") {
      this.#token = value ?? "";
      if (this.#state === "signed-out") this.#restart();
    } else this.#restart();
  }

  #wire(): void {
    const button = this.#$("[part~=button]");
    button.addEventListener("click", () =>
      this.#$("[part~=panel]").hidden ? this.#open() : this.#close(true),
    );
    button.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.#close(true);
    });
    this.#$("[part~=panel]").addEventListener("keydown", (e) => this.#onKey(e));
    this.#$(".x").addEventListener("click", () => this.#close(true));
    this.#$(".mark").addEventListener("click", () => void this.#markAll());
    this.#$(".all").addEventListener("click", () => this.#filter(false));
    this.#$(".un").addEventListener("click", () => this.#filter(true));
    this.#$(".more").addEventListener("click", () => void this.#load(this.#page + 1));
    this.#$(".retry").addEventListener("click", () => (this.#live ? this.#resync() : this.#restart()));
  }

  #onVisibility = () => {
    if (document.visibilityState !== "visible") return;
    if (!this.#started) void this.#start();
    else this.#resync();
  };

  #onOffline = () => this.#setState("offline");

  #outside = (e: Event) => {
    if (!e.composedPath().includes(this)) this.#close(false);
  };

  // ---- lifecycle ---------------------------------------------------------------------------

  async #start(): Promise<void> {
    const run = ++this.#run;
    this.#started = true;
    clearTimeout(this.#retryTimer);
    const base = new URL(this.getAttribute("base-url") || location.origin, location.href).href.replace(
      /\/+$/,
      "",
    );
    const client = new FeedClient(
      base,
      () => this.#token,
      () => this.tokenProvider?.(),
      (token) => {
        this.#token = token;
      },
    );
    this.#client = client;
    try {
      if (!this.#token && this.tokenProvider) this.#token = await this.tokenProvider();
      const c = await client.count();
      if (run !== this.#run) return;
      if (c.count !== undefined) this.#setCount(c.count, c.version);
      if (this.#state === "offline" || this.#state === "error") this.#setState("idle");
      const scope = `${base}:${await this.#userScope(c.etag)}`;
      if (run !== this.#run) return;
      this.#live = new LiveFeed({
        client,
        scope,
        etag: c.etag,
        interval: c.interval ?? 60,
        onMessage: (m) => this.#onLive(m),
        onConnection: (connection) => {
          this.#connection = connection;
        },
        onRefused: (error) => this.#fail(error),
      });
      this.#live.start();
    } catch (error) {
      if (run !== this.#run) return;
      this.#fail(error);
      if (this.#state !== "signed-out") {
        this.#retryTimer = setTimeout(() => {
          if (document.visibilityState === "visible") void this.#start();
          else this.#started = false;
        }, 5000);
      }
    }
  }

  /**
   * Who the tabs share a stream for. Belfry's feed ETag names the user (`W/"u42.v7"`), so tabs
   * holding different session tokens of one user still share; otherwise a digest of the token.
   */
  async #userScope(etag: string | undefined): Promise<string> {
    const user = /"(u\d+)\./.exec(etag ?? "")?.[1];
    if (user) return user;
    if (!crypto.subtle) return Math.random().toString(36);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(this.#token));
    return [...new Uint8Array(digest).slice(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  #stop(): void {
    this.#run++;
    this.#listRun++;
    this.#started = false;
    clearTimeout(this.#retryTimer);
    this.#live?.stop();
    this.#live = undefined;
  }

  #restart(): void {
    if (!this.isConnected) return;
    this.#stop();
    for (const { li } of this.#entries.values()) li.remove();
    this.#entries.clear();
    this.#page = 0;
    this.#maxSeen = -1;
    this.#version = -1;
    this.#setState("idle");
    this.#onVisibility();
  }

  #fail(error: unknown): void {
    if (error instanceof FeedError && (error.status === 401 || error.status === 403)) {
      this.#stop();
      this.#setState("signed-out");
    } else this.#setState(navigator.onLine === false ? "offline" : "error");
  }

  // ---- live changes ------------------------------------------------------------------------

  #onLive(m: LiveMessage): void {
    if (m.k === "count") this.#setCount(m.count, m.version);
    else if (m.k === "notification") {
      const fresh = !this.#entries.has(m.n.id) && m.n.id > this.#maxSeen;
      this.#upsert(m.n);
      if (fresh) {
        this.#total++;
        this.#arrived(m.n);
      }
    } else if (m.k === "read") {
      for (const entry of this.#entries.values()) {
        if (entry.n.read_at === null && (m.ids === "all" || m.ids.includes(entry.n.id))) {
          entry.n.read_at = new Date().toISOString();
          this.#paint(entry);
        }
      }
    } else this.#resync();
  }

  /** Re-reads the count (unless a stream keeps it) and the loaded part of the list. */
  #resync = () => {
    const client = this.#client;
    if (!client || this.#state === "signed-out" || document.visibilityState !== "visible") return;
    if (this.#connection !== "stream") {
      client.count().then(
        (c) => {
          if (c.count !== undefined) this.#setCount(c.count, c.version);
          if (this.#state === "offline" || this.#state === "error")
            this.#setState(this.#page ? "ready" : "idle");
        },
        (error) => this.#fail(error),
      );
    }
    const open = !this.#$("[part~=panel]").hidden;
    if (this.#page > 0 || this.#maxSeen >= 0 || open)
      void this.#load(1, Math.min(200, Math.max(1, this.#page) * this.#pageSize()));
  };

  #arrived(n: Notification): void {
    this.#emit("belfry:notification", { notification: n });
    this.#announced.push(n);
    clearTimeout(this.#announceTimer);
    this.#announceTimer = setTimeout(() => {
      const items = this.#announced.splice(0);
      const region = this.#$("[aria-live]");
      region.textContent = "";
      setTimeout(() => {
        region.textContent =
          items.length === 1
            ? this.#t.announceOne(items[0]?.title ?? "")
            : this.#t.announceMany(items.length);
      }, 50);
    }, 250);
  }

  #setCount(count: number, version?: number): void {
    if (version !== undefined) {
      if (version < this.#version) return;
      this.#version = version;
    }
    if (count === this.#count) return;
    this.#count = count;
    this.#renderCount();
    this.#emit("belfry:count", { count });
  }

  #emit(type: string, detail: unknown): boolean {
    return this.dispatchEvent(
      new CustomEvent(type, { detail, bubbles: true, composed: true, cancelable: true }),
    );
  }

  // ---- the list ----------------------------------------------------------------------------

  #pageSize(): number {
    return integer(this.getAttribute("page-size"), 20, 1, 200);
  }

  /** Loads `page` (1-based) of the current filter and merges it into the list. */
  async #load(page: number, size = this.#pageSize()): Promise<void> {
    const client = this.#client;
    if (!client) return;
    const run = this.#listRun;
    const refresh = page === 1 && size !== this.#pageSize();
    if (this.#state !== "signed-out") this.#setState("loading");
    try {
      const r = await client.list(page, size, this.#unreadOnly);
      if (run !== this.#listRun) return;
      const baseline = this.#maxSeen;
      for (const n of r.items) {
        const fresh = baseline >= 0 && !this.#entries.has(n.id) && n.id > baseline && n.read_at === null;
        this.#upsert(n);
        if (fresh) this.#arrived(n);
      }
      this.#maxSeen = Math.max(this.#maxSeen, 0);
      if (!refresh) this.#page = page;
      this.#total = r.total;
      this.#setState("ready");
    } catch (error) {
      if (run === this.#listRun) this.#fail(error);
    }
  }

  #filter(unreadOnly: boolean): void {
    this.#$(".all").setAttribute("aria-pressed", String(!unreadOnly));
    this.#$(".un").setAttribute("aria-pressed", String(unreadOnly));
    if (unreadOnly === this.#unreadOnly) return;
    this.#unreadOnly = unreadOnly;
    this.#listRun++;
    for (const { li } of this.#entries.values()) li.remove();
    this.#entries.clear();
    this.#page = 0;
    void this.#load(1);
  }

  #upsert(n: Notification): void {
    this.#maxSeen = Math.max(this.#maxSeen, n.id);
    const known = this.#entries.get(n.id);
    if (known) {
      known.n = { ...known.n, ...n, read_at: known.n.read_at ?? n.read_at };
      this.#paint(known);
      return;
    }
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    const dot = document.createElement("span");
    dot.className = "d";
    const flag = document.createElement("span");
    flag.className = "sr";
    const title = document.createElement("span");
    title.className = "t";
    title.textContent = n.title;
    const body = document.createElement("span");
    body.className = "b";
    body.textContent = n.body;
    const time = document.createElement("time");
    time.dateTime = n.created_at;
    time.title = new Date(n.created_at).toLocaleString(this.#tag());
    button.append(dot, flag, title, body, time);
    button.addEventListener("click", () => void this.#activate(n.id));
    li.append(button);
    const entry = { n, li, button };
    this.#entries.set(n.id, entry);
    this.#paint(entry);
    // Insert in order without moving existing rows (moving a focused row would blur it).
    const list = this.#$("ul");
    let next: Element | null = null;
    for (const other of list.children) {
      const o = this.#entries.get(Number((other as HTMLElement).dataset.id));
      if (o && before(n, o.n)) {
        next = other;
        break;
      }
    }
    li.dataset.id = String(n.id);
    list.insertBefore(li, next);
    this.#view();
  }

  #paint({ n, button }: Entry): void {
    const unread = n.read_at === null;
    button.setAttribute("part", unread ? "item unread" : "item");
    (button.children[1] as HTMLElement).textContent = unread ? this.#t.unreadItem : "";
    (button.children[4] as HTMLElement).textContent = relativeTime(n.created_at, Date.now(), this.#rtf);
  }

  /** Marks the item read, then follows its link (console-relative paths only). */
  async #activate(id: number): Promise<void> {
    const entry = this.#entries.get(id);
    if (!entry || !this.#client) return;
    if (entry.n.read_at === null) {
      try {
        const r = await this.#client.markRead(id);
        if (entry.n.read_at === null && this.#count) this.#setCount(this.#count - 1);
        entry.n.read_at = r.read_at;
        this.#paint(entry);
      } catch (error) {
        this.#fail(error); // the link is still followed: reading it matters more than the dot
      }
    }
    const href = safeLink(entry.n.link, location.href);
    if (href && this.#emit("belfry:navigate", { notification: entry.n, href })) location.assign(href);
  }

  async #markAll(): Promise<void> {
    if (!this.#client) return;
    try {
      await this.#client.markAllRead();
      this.#onLive({ k: "read", ids: "all" });
      this.#setCount(0);
    } catch (error) {
      this.#fail(error);
    }
  }

  // ---- rendering ---------------------------------------------------------------------------

  #tag(): "en" | "zh" {
    return stringsFor(this.getAttribute("locale")).tag;
  }

  #applyLocale(): void {
    const { tag, strings } = stringsFor(this.getAttribute("locale"));
    this.#t = strings;
    this.#rtf = new Intl.RelativeTimeFormat(tag, { numeric: "auto" });
    this.#$("#title").textContent = strings.title;
    this.#$(".x").setAttribute("aria-label", strings.close);
    this.#$(".tabs").setAttribute("aria-label", strings.filter);
    this.#$(".all").textContent = strings.all;
    this.#$(".un").textContent = strings.unread;
    this.#$(".mark").textContent = strings.markAll;
    this.#$(".more").textContent = strings.more;
    this.#$(".retry").textContent = strings.retry;
    for (const entry of this.#entries.values()) this.#paint(entry);
    this.#renderCount();
    this.#setState(this.#state);
  }

  #renderCount(): void {
    const count = this.#count ?? 0;
    const max = integer(this.getAttribute("max-count"), 99, 1, 1e9);
    const badge = this.#$("[part~=badge]");
    badge.hidden = count === 0;
    badge.textContent = count > max ? `${max}+` : String(count);
    this.#$("[part~=button]").setAttribute("aria-label", this.#t.button(count));
    (this.#$(".mark") as HTMLButtonElement).disabled = count === 0;
  }

  #setState(state: ListState): void {
    this.#state = state;
    this.#view();
  }

  /** Shows what the list holds and what is happening (loading, empty, offline, error). */
  #view(): void {
    const state = this.#state;
    const empty = this.#entries.size === 0;
    const t = this.#t;
    const text =
      state === "signed-out"
        ? t.signedOut
        : state === "offline"
          ? t.offline
          : state === "error"
            ? t.error
            : state === "loading" && empty
              ? t.loading
              : state === "ready" && empty
                ? this.#unreadOnly
                  ? t.emptyUnread
                  : t.empty
                : "";
    const status = this.#$(".st");
    status.textContent = text;
    status.hidden = text === "";
    this.#$(".retry").hidden = state !== "error";
    this.#$("ul").hidden = empty;
    this.#$("ul").setAttribute("aria-busy", String(state === "loading"));
    this.#$(".more").hidden = state !== "ready" || this.#page * this.#pageSize() >= this.#total;
  }

  // ---- the panel ---------------------------------------------------------------------------

  #open(): void {
    const panel = this.#$("[part~=panel]");
    panel.hidden = false;
    // Right-aligned under the bell (a console's top-right corner); flipped when that would
    // push it off the left edge.
    panel.classList.remove("l");
    panel.classList.toggle("l", panel.getBoundingClientRect().left < 0);
    this.#$("[part~=button]").setAttribute("aria-expanded", "true");
    for (const entry of this.#entries.values()) this.#paint(entry); // fresh relative times
    if (this.#page === 0 && this.#state !== "loading") void this.#load(1);
    (this.#items()[0] ?? panel).focus();
    document.addEventListener("pointerdown", this.#outside);
    clearInterval(this.#clock);
    this.#clock = setInterval(() => {
      for (const entry of this.#entries.values()) this.#paint(entry);
    }, 30_000);
  }

  #close(returnFocus: boolean): void {
    document.removeEventListener("pointerdown", this.#outside);
    clearInterval(this.#clock);
    const panel = this.#root?.querySelector<HTMLElement>("[part~=panel]");
    if (!panel || panel.hidden) return;
    panel.hidden = true;
    this.#$("[part~=button]").setAttribute("aria-expanded", "false");
    if (returnFocus) this.#$("[part~=button]").focus();
  }

  #items(): HTMLButtonElement[] {
    return [...this.#root.querySelectorAll<HTMLButtonElement>("[part~=item]")];
  }

  #onKey(e: KeyboardEvent): void {
    if (e.key === "Escape") {
      e.preventDefault();
      this.#close(true);
      return;
    }
    const moves: Record<string, (i: number, last: number) => number> = {
      ArrowDown: (i, last) => Math.min(last, i + 1),
      ArrowUp: (i, last) => (i < 0 ? last : Math.max(0, i - 1)),
      Home: () => 0,
      End: (_, last) => last,
    };
    const move = moves[e.key];
    const items = this.#items();
    if (!move || items.length === 0) return;
    e.preventDefault();
    const current = items.indexOf(this.#root.activeElement as HTMLButtonElement);
    items[move(current, items.length - 1)]?.focus();
  }
}
