import fc from "fast-check";
import { FEED_TYPES } from "./feed-model.js";
import { plausibleBodyArb } from "./plausible-bodies.js";

/**
 * Generated hostile HTTP input for the route fuzz suite: path parameters, query strings, headers
 * and bodies. Plans stay small and printable (a huge or deeply nested body is described, not
 * spelt out), so a failing case shrinks to something a person can read; `resolveBody` makes the
 * bytes when the request is sent.
 */

/** A long string, described rather than spelt out, so a counterexample stays readable. */
export interface Long {
  repeat: string;
  times: number;
}
export type Text = string | Long;
const long = (repeat: string, times: number): Long => ({ repeat, times });
export const spell = (t: Text): string => (typeof t === "string" ? t : t.repeat.repeat(t.times));

/** Raw UTF-8 bytes of `s` as a latin1 string: Node sends each character as that byte. */
export const utf8Bytes = (s: string) => Buffer.from(s, "utf8").toString("latin1");

/** Path parameter values: real ids (so some requests reach deep), and hostile text. */
export function segmentArb(realIds: string[]): fc.Arbitrary<Text> {
  return fc.oneof<fc.MaybeWeightedArbitrary<Text>[]>(
    { weight: 6, arbitrary: fc.constantFrom(...realIds) },
    {
      weight: 5,
      arbitrary: fc.constantFrom(
        ...["0", "-1", "1.5", "1e3", "0x1f", "007", "+1", "%201", "NaN", "Infinity", "null", "true"],
        ...["9007199254740993", "99999999999999999999999999999", "2147483648", "-9223372036854775809"],
        ...["__proto__", "constructor", "prototype", "%00", "1%00", "..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd"],
        ...["../..", "%2F", "%ZZ", "%", "%C0%AF", "%ED%A0%80", "%F0%9F%94%94", "%EF%BF%BF", "\u00e9"],
        ...[utf8Bytes("🔔"), utf8Bytes("通知"), "'", '"', "<script>", "%27%20OR%201%3D1--", "~", ";", "*"],
      ),
    },
    { weight: 1, arbitrary: fc.constantFrom(long("a", 9000), long("9", 5000)) },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 30 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String) },
  );
}

const queryNameArb = fc.constantFrom(
  ...["unread", "read", "type", "page", "page_size", "ticket", "last_event_id", "status", "since", "limit"],
  ...[
    "page[]",
    "page[0]",
    "a[b][c]",
    "__proto__",
    "constructor",
    "",
    "%00",
    "%ZZ",
    "\u00e9",
    "x".repeat(300),
  ],
);
const queryValueArb = fc.oneof(
  fc.constantFrom(
    ...["", "true", "false", "1", "0", "-1", "2147483648", "1e3", "TRUE", "null", "[]", "{}", "%00", "%ZZ"],
    ...["%F0%9F%94%94", "%ED%A0%80", "\u00e9", utf8Bytes("通知"), "a".repeat(3000), "9".repeat(400)],
    ...FEED_TYPES,
  ),
  fc.string({ unit: "grapheme", maxLength: 20 }).map(encodeURIComponent),
  fc.nat().map(String),
);
/** A query string in pieces (joined when sent), with its `?` or nothing. */
export const queryArb: fc.Arbitrary<Text[]> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.constantFrom<Text[]>(
      [],
      ["?"],
      ["?&&&"],
      ["?="],
      ["?page"],
      ["?==&="],
      ["?%"],
      ["?", long("a=1&", 1500)],
    ),
  },
  {
    weight: 12,
    arbitrary: fc
      .array(fc.tuple(queryNameArb, queryValueArb), { maxLength: 6 })
      .map((pairs) => ["?", ...pairs.flatMap(([k, v], i) => [i === 0 ? "" : "&", k, "=", v])]),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(queryNameArb, queryValueArb, queryValueArb)
      .map(([k, a, b]) => ["?", k, "=", a, "&", k, "=", b]),
  },
  { weight: 1, arbitrary: fc.constant<Text[]>(["?q=", long("x", 20_000)]) },
);

/** Which credentials a request carries; `valid` is the right one for the route. */
export const AUTH_KINDS = [
  ...Array<"valid">(8).fill("valid"),
  "other principal's",
  "none",
  "none",
  "Basic scheme",
  "Bearer and nothing",
  "very long token",
  "lowercase bearer",
  "token and an extra word",
  "latin1 garbage",
  "unknown bf_ key",
] as const;
export type AuthKind = (typeof AUTH_KINDS)[number];

/** The Authorization header for `kind`, given the route's valid credential and the other one. */
export function authorization(kind: AuthKind, valid: string, other: string): string | undefined {
  switch (kind) {
    case "valid":
      return `Bearer ${valid}`;
    case "other principal's":
      return `Bearer ${other}`;
    case "none":
      return undefined;
    case "Basic scheme":
      return `Basic ${Buffer.from("admin:admin").toString("base64")}`;
    case "Bearer and nothing":
      return "Bearer ";
    case "very long token":
      return `Bearer bf_${"A".repeat(12_000)}`;
    case "lowercase bearer":
      return `bearer ${valid}`;
    case "token and an extra word":
      return `Bearer ${valid} extra`;
    case "latin1 garbage":
      return `Bearer ${utf8Bytes("ключ🔑")}\u00ff`;
    case "unknown bf_ key":
      return `Bearer bf_${"x".repeat(43)}`;
  }
}

/** Mostly JSON (so bodies get read), else types Belfry must refuse. */
const contentTypeArb = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8", "APPLICATION/JSON"),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      ...["application/json; charset=utf-16", "application/json;;;", "application/jsonx", "text/plain", ""],
      ...[
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        utf8Bytes("application/json; ü"),
      ],
    ),
  },
);

/** Extra headers: content type, conditional and resume headers, and odd others. */
export const headersArb: fc.Arbitrary<[string, Text][]> = fc
  .record(
    {
      "content-type": contentTypeArb,
      "if-none-match": fc.constantFrom(
        "*",
        'W/"u1.v1"',
        '"',
        "W/",
        "garbage",
        '"a", W/"b", *',
        "x".repeat(6000),
        "",
      ),
      "last-event-id": fc.constantFrom(
        "0",
        "-1",
        "1e9",
        "99999999999999999999",
        "abc",
        "\u00e9",
        "",
        " 5",
        "5 ",
      ),
      accept: fc.constantFrom("text/event-stream", "*/*", "application/xml", "\u00e9"),
      origin: fc.constantFrom("https://evil.example", "null", "\u00e9"),
      "x-forwarded-for": fc.constantFrom("1.2.3.4, garbage", "::1", "\u00e9"),
    },
    { requiredKeys: [] },
  )
  .map((h) => Object.entries(h) as [string, Text][]);

/** A body, described: text sent as UTF-8, raw bytes, or a generated huge or deep one. */
export type BodyPlan =
  | { text: string }
  | { bytes: readonly number[] }
  | { deep: number; open: "[" | '{"a":' }
  | { huge: number };

const FIELDS = [
  ...["id", "type", "user_id", "owner_user_id", "data", "occurred_at", "title", "body", "link", "email"],
  ...["name", "role", "url", "event_types", "muted_types", "description", "enabled", "events", "since"],
  ...["ttl_seconds", "amount_cents", "balance_cents"],
];
const hostileValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    ...[null, true, false, 0, -1, 1.5, -0, 1e308, Number.MAX_SAFE_INTEGER + 2, "", "x".repeat(300)],
    ...[
      [],
      {},
      "a\u0000b",
      "\ud800",
      "\udfff x",
      "通知🔔",
      "https://hooks.example.com/x",
      "http://127.0.0.1/",
    ],
    ...[
      "javascript:alert(1)",
      "//evil.example",
      "fuzz@example.com",
      "admin",
      "owner",
      "2026-05-22T08:08:00Z",
    ],
    ...FEED_TYPES,
    { amount_cents: 100, balance_cents: 5 },
    [{ id: "fz", type: FEED_TYPES[0], user_id: 1, data: { amount_cents: 1, balance_cents: 1 } }],
  ),
  fc.jsonValue({ maxDepth: 3 }),
);
/** A JSON object as text, written pair by pair so keys like `__proto__` survive as keys. */
const objectTextArb = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom(...FIELDS, "__proto__", "constructor", "prototype", "extra"), fc.string()),
      hostileValueArb,
    ),
    { maxLength: 6 },
  )
  .map(
    (pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? "null"}`).join(",")}}`,
  );

export const bodyArb = (userIds: number[], path: string): fc.Arbitrary<BodyPlan | undefined> =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(undefined) },
    { weight: 12, arbitrary: plausibleBodyArb(userIds, path).map((text) => ({ text })) },
    { weight: 16, arbitrary: objectTextArb.map((text) => ({ text })) },
    {
      weight: 8,
      arbitrary: fc
        .constantFrom(
          ...["", " ", "{", '{"a":}', "nul", "'x'", "{,}", '{"a":1,}', '{"a":1}{"b":2}', "\ufeff{}", "NaN"],
          ...["Infinity", "[]", "[{}]", '"text"', "42", "null", "true", '{"__proto__":{"admin":true}}'],
          ...['{"constructor":{"prototype":{"polluted":1}}}', '{"user_id":1e400}', '{"amount_cents":-0}'],
          ...['{"user_id":123456789012345678901234567890}', '{"page_size":1e-400}', '{"a":"\\u0000"}'],
          ...['{"a":"\\ud800"}', '{"\\u0000":1}', '{"a":1,"a":2}', '{"events":[1,[2],{"id":null}]}'],
        )
        .map((text) => ({ text })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom([0x7b, 0x22, 0xff, 0x22, 0x7d], [0xc0, 0xaf], [0xfe, 0xff, 0, 0x7b])
        .map((bytes) => ({ bytes })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        deep: fc.constantFrom(33, 2000, 100_000),
        open: fc.constantFrom("[" as const, '{"a":' as const),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ huge: 1024 * 1024 + 1 }) },
  );

export function resolveBody(plan: BodyPlan | undefined): Buffer | undefined {
  if (plan === undefined) return undefined;
  if ("text" in plan) return Buffer.from(plan.text, "utf8");
  if ("bytes" in plan) return Buffer.from(plan.bytes);
  if ("huge" in plan) return Buffer.from(`{"name":"${"x".repeat(plan.huge)}"}`);
  const close = plan.open === "[" ? "]" : "}";
  return Buffer.from(plan.open.repeat(plan.deep) + (plan.open === "[" ? "" : "1") + close.repeat(plan.deep));
}
