import { iso } from "./iso.js";

/**
 * A tiny in-memory model of users' feeds, written from the documented API alone (not from src/): what
 * ingest, batch ingest, mark-read, mark-all-read and mutes do, and what every read must then
 * answer. test/feed-model.test.ts drives the real API and this model side by side.
 */

/** The feed types, listed here rather than imported so that the model stays independent of src/. */
export const FEED_TYPES = [
  "system.payment.received",
  "system.balance.notify.dispatched",
  "admin.org.member.add",
  "admin.api_key.revoke",
  "org.api_key.revoke",
] as const;
export const PAYMENT = "system.payment.received";
export const LOW_BALANCE = "system.balance.notify.dispatched";

/** An ingest body as sent. */
export interface EventBody {
  id: string;
  type: string;
  user_id: number;
  data: Record<string, unknown>;
  occurred_at?: string;
  title?: string;
  body?: string;
  link?: string | null;
}

/**
 * One ingest item and what the model knows about it: `valid` items are checked for the user and
 * the id; `invalid` ones must be refused by validation (400) whatever their id; `unknown-user`
 * ones are valid but name no user (404). `createdAt` is the instant of `occurred_at`.
 */
export type Item =
  | { kind: "valid"; body: EventBody; createdAt: number | undefined }
  | { kind: "unknown-user"; body: EventBody }
  | { kind: "invalid"; body: unknown; why: string };

export interface ModelRow {
  /** The API's id, learnt from the first listing after the row was added. */
  id: number | undefined;
  seq: number;
  owner: number;
  type: string;
  title: string;
  body: string;
  link: string | null;
  createdAt: number;
  readAt: number | null;
}

/** What one ingest item answers: a result, or an error of this status and type. */
export type ItemOutcome =
  | { id: string; duplicate: boolean; notifications: number }
  | { error: { status: number; type: string } };

/** `2500` → `$25.00`, `-300` → `-$3.00`, by Intl rather than the service's own formatter. */
export const money = (cents: number) =>
  `${cents < 0 ? "-" : ""}$${(Math.abs(cents) / 100).toLocaleString("en-US", {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  })}`;

function render(b: EventBody): { title: string; body: string; link: string | null } {
  const d = b.data as {
    amount_cents: number;
    balance_cents: number;
    threshold_cents: number;
    receipt?: string;
  };
  const base =
    b.type === PAYMENT
      ? {
          title: `Payment received · ${money(d.amount_cents)}`,
          body:
            d.receipt === undefined
              ? `Your top-up has cleared. Available balance is now ${money(d.balance_cents)}.`
              : `Stripe receipt #${d.receipt}. Your balance is now ${money(d.balance_cents)}.`,
          link: "/billing" as string | null,
        }
      : {
          title: `Low balance · ${money(d.balance_cents)}`,
          body: `Your balance of ${money(d.balance_cents)} is below your alert threshold of ${money(d.threshold_cents)}.`,
          link: "/billing" as string | null,
        };
  return {
    title: b.title ?? base.title,
    body: b.body ?? base.body,
    link: "link" in b ? (b.link ?? null) : base.link,
  };
}

const sortKeys = (v: unknown): unknown =>
  v !== null && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
      )
    : v;

/** "Same content": type, user, data (key order aside), overrides as given, occurred_at as an instant. */
function content(item: { body: EventBody; createdAt: number | undefined }): string {
  const b = item.body;
  return JSON.stringify([
    b.type,
    b.user_id,
    sortKeys(b.data),
    "title" in b ? b.title : "-",
    "body" in b ? b.body : "-",
    "link" in b ? b.link : "-",
    item.createdAt ?? "-",
  ]);
}

/** A filter of the list, as the query string gives it after validation. */
export interface ListFilter {
  read?: boolean;
  type?: string;
  page: number;
  pageSize: number;
}

export class FeedModel {
  readonly rows: ModelRow[] = [];
  readonly events = new Map<string, { item: Item & { kind: "valid" }; owner: number }>();
  readonly muted: string[][];
  /** Per user, a counter that moves with every change to their rows or counts. */
  readonly version: number[];
  /** Per user and endpoint, the ETag seen at each version. */
  readonly etags: Map<string, string>[];
  private seq = 0;

  constructor(readonly userIds: number[]) {
    this.muted = userIds.map(() => []);
    this.version = userIds.map(() => 0);
    this.etags = userIds.map(() => new Map());
  }

  owner(userId: number): number {
    return this.userIds.indexOf(userId);
  }

  /** Applies one ingest item (checks in the contract's order) and returns its outcome. */
  ingest(item: Item, now: number): ItemOutcome {
    if (item.kind === "invalid") return { error: { status: 400, type: "invalid_request_error" } };
    const owner = this.owner(item.body.user_id);
    if (owner < 0) return { error: { status: 404, type: "not_found_error" } };
    if (item.kind !== "valid") throw new Error("unreachable");
    const known = this.events.get(item.body.id);
    if (known) {
      return content(known.item) === content(item)
        ? { id: item.body.id, duplicate: true, notifications: 0 }
        : { error: { status: 409, type: "conflict_error" } };
    }
    this.events.set(item.body.id, { item, owner });
    if (this.muted[owner]?.includes(item.body.type)) {
      return { id: item.body.id, duplicate: false, notifications: 0 };
    }
    this.rows.push({
      id: undefined,
      seq: this.seq++,
      owner,
      type: item.body.type,
      ...render(item.body),
      createdAt: item.createdAt ?? now,
      readAt: null,
    });
    return { id: item.body.id, duplicate: false, notifications: 1 };
  }

  /** Marks changed feeds: call once per request with the owners whose feeds it changed. */
  changed(owners: Iterable<number>): void {
    for (const o of new Set(owners)) this.version[o] = (this.version[o] ?? 0) + 1;
  }

  rowsOf(owner: number): ModelRow[] {
    return this.rows.filter((r) => r.owner === owner);
  }

  unread(owner: number): number {
    return this.rowsOf(owner).filter((r) => r.readAt === null).length;
  }

  markAllRead(owner: number, now: number): number {
    const unread = this.rowsOf(owner).filter((r) => r.readAt === null);
    for (const r of unread) r.readAt = now;
    if (unread.length > 0) this.changed([owner]);
    return unread.length;
  }

  /** The page the list must answer, newest first (created_at desc, then id desc). */
  page(owner: number, f: ListFilter) {
    const matching = this.rowsOf(owner)
      .filter(
        (r) =>
          (f.type === undefined || r.type === f.type) &&
          (f.read === undefined || f.read === (r.readAt !== null)),
      )
      .sort((a, b) => b.createdAt - a.createdAt || (b.id ?? 0) - (a.id ?? 0));
    const start = (f.page - 1) * f.pageSize;
    return {
      items: matching.slice(start, start + f.pageSize).map(toApi),
      total: matching.length,
      page: f.page,
      page_size: f.pageSize,
    };
  }

  /**
   * Learns the ids of rows added since the last listing from the API's full feed of `owner`: the
   * unknown ids, ascending, belong to the model's unbound rows in the order they were added, and
   * each is above every id seen before (ids grow in insertion order).
   */
  bind(owner: number, apiIds: number[], maxSeen: number): number {
    const known = new Set(this.rowsOf(owner).map((r) => r.id));
    const fresh = apiIds.filter((id) => !known.has(id)).sort((a, b) => a - b);
    const unbound = this.rowsOf(owner).filter((r) => r.id === undefined);
    if (fresh.length !== unbound.length)
      throw new Error(`user ${owner}: the API has ${fresh.length} new rows, the model ${unbound.length}`);
    fresh.forEach((id, i) => {
      if (id <= maxSeen) throw new Error(`row id ${id} is not above ${maxSeen}, an id seen before it`);
      (unbound[i] as ModelRow).id = id;
      maxSeen = id;
    });
    return maxSeen;
  }

  /**
   * Records the ETag an endpoint answered for `owner`'s current version: the same version must
   * always give the same ETag, and different versions (or users) different ones.
   */
  observeEtag(owner: number, endpoint: string, etag: unknown, allEtags: Map<string, string>): void {
    if (typeof etag !== "string" || etag === "") throw new Error(`${endpoint}: no ETag`);
    const at = `user ${owner} version ${this.version[owner]}`;
    const before = this.etags[owner]?.get(`${endpoint}/${this.version[owner]}`);
    if (before !== undefined && before !== etag)
      throw new Error(`${endpoint}: ETag ${etag} for an unchanged feed (was ${before})`);
    const holder = allEtags.get(etag);
    if (holder !== undefined && holder !== at)
      throw new Error(`${endpoint}: ETag ${etag} at ${at} was already given at ${holder}`);
    allEtags.set(etag, at);
    this.etags[owner]?.set(`${endpoint}/${this.version[owner]}`, etag);
  }
}

export const toApi = (r: ModelRow) => ({
  id: r.id,
  type: r.type,
  title: r.title,
  body: r.body,
  link: r.link,
  read_at: r.readAt === null ? null : iso(r.readAt),
  created_at: iso(r.createdAt),
});
