import { expect } from "vitest";
import { FEED_TYPES, type FeedModel, type ListFilter } from "./feed-model.js";
import { type Cmd, checkAll, expectEnvelope, FEED, type Real, send, tick } from "./feed-model-real.js";

/** The feed model suite's reads: the list with every filter, and conditional polls. */

export type Params = Partial<Record<"unread" | "read" | "type" | "page" | "page_size", string>> & {
  twice?: string;
};

/** The contract's reading of the list query: a filter, or undefined for a 400. */
function listFilter(p: Params): ListFilter | undefined {
  if (p.twice !== undefined) return undefined;
  const given = (v: string | undefined) => (v === "" ? undefined : v);
  const bool = (v: string | undefined) =>
    given(v) === undefined
      ? null
      : v === "true" || v === "1"
        ? true
        : v === "false" || v === "0"
          ? false
          : "bad";
  const int = (v: string | undefined, fallback: number) => {
    if (given(v) === undefined) return fallback;
    const n = /^\d+$/.test(v as string) ? Number(v) : Number.NaN;
    return n >= 1 && n <= 2 ** 31 - 1 ? n : undefined;
  };
  const [unread, read] = [bool(p.unread), bool(p.read)];
  const type = given(p.type);
  const [page, pageSize] = [int(p.page, 1), int(p.page_size, 50)];
  if (unread === "bad" || read === "bad" || (unread && read) || page === undefined || pageSize === undefined)
    return undefined;
  if (type !== undefined && !(FEED_TYPES as readonly string[]).includes(type)) return undefined;
  return {
    ...(unread ? { read: false } : read ? { read: true } : {}),
    ...(type !== undefined && { type }),
    page,
    pageSize: Math.min(pageSize, 200),
  };
}

export class List implements Cmd {
  constructor(
    readonly user: number,
    readonly params: Params,
  ) {}
  check = () => true;
  async run(m: FeedModel, r: Real) {
    tick();
    const { twice, ...known } = this.params;
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(known)) if (v !== undefined && k !== twice) query.append(k, v);
    if (twice !== undefined) query.append(twice, "1");
    if (twice !== undefined) query.append(twice, "2");
    query.append("utm_source", "ignored");
    const res = await send(r, "GET", `${FEED}?${query}`, r.users[this.user]!.key);
    const filter = listFilter(this.params);
    if (!filter) expectEnvelope(res, 400, "invalid_request_error");
    else {
      expect(res.status, res.text).toBe(200);
      expect(res.json).toEqual(m.page(this.user, filter));
      m.observeEtag(this.user, `list?${query}`, res.headers.etag, r.etags);
    }
    await checkAll(m, r);
  }
  toString = () => `list(user ${this.user}: ${JSON.stringify(this.params)})`;
}

export type Tag = "current" | "weak-stripped" | "star" | "in a list" | "garbage" | { stale: number };

export class Poll implements Cmd {
  constructor(
    readonly user: number,
    readonly which: "count" | "list",
    readonly tag: Tag,
  ) {}
  check = () => true;
  async run(m: FeedModel, r: Real) {
    tick();
    const o = this.user;
    const [path, endpoint] =
      this.which === "count" ? ["/unread-count", "count"] : ["?unread=true&page_size=5", "list?poll"];
    const key = r.users[o]!.key;
    const plain = await send(r, "GET", `${FEED}${path}`, key);
    m.observeEtag(o, endpoint, plain.headers.etag, r.etags);
    const current = plain.headers.etag as string;
    const stale = [...(m.etags[o]?.entries() ?? [])]
      .filter(([k, v]) => k.startsWith(`${endpoint}/`) && v !== current)
      .map(([, v]) => v);
    const tag = this.tag;
    const sent =
      tag === "current"
        ? current
        : tag === "weak-stripped"
          ? current.replace(/^W\//, "")
          : tag === "star"
            ? "*"
            : tag === "in a list"
              ? `"nope", ${current}`
              : tag === "garbage" || stale.length === 0
                ? 'W/"garbage\u00e9", ,,'
                : (stale[tag.stale % stale.length] as string);
    const res = await send(r, "GET", `${FEED}${path}`, key, undefined, { "if-none-match": sent });
    if (sent === current || tag === "weak-stripped" || tag === "star" || tag === "in a list") {
      expect(res.status, res.text).toBe(304);
      expect(res.text).toBe("");
      expect(res.headers.etag).toBe(current);
    } else {
      expect(res.status, res.text).toBe(200);
      expect(res.headers.etag).toBe(current);
      expect(res.json).toEqual(
        this.which === "count" ? { count: m.unread(o) } : m.page(o, { read: false, page: 1, pageSize: 5 }),
      );
    }
    await checkAll(m, r);
  }
  toString = () => `poll(user ${this.user}: ${this.which}, If-None-Match ${JSON.stringify(this.tag)})`;
}
