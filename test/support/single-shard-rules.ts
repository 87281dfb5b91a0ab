import { KEYED_TABLES, USER_TABLES } from "../../src/store/distribute-citus.js";

/**
 * The rule the SQL capture checks (see sql-capture-setup.ts): every statement that touches a
 * table sharded by user names the user, so on Citus it runs on one node. Tables sharded by
 * another key must name that key. A short list of statements may span users, each for a reason.
 */

/** Sharded tables and the column a statement about them must filter on (or insert): as Citus places them. */
export const SHARD_KEYS: Record<string, string> = {
  ...Object.fromEntries(USER_TABLES.map((t) => [t, "user_id"])),
  ...KEYED_TABLES,
};

/** Statements that may span users, and why. */
export const SPANNING: { reason: string; match: RegExp }[] = [
  {
    reason: "migrations rewrite whole tables once, on the coordinator",
    match:
      /^(alter table|create (unique )?index|drop (index|table)|create (table|sequence)|select setval|update "?(feed_states|webhook_)\w* set "?(last_id|user_id|bucket)"? = |insert into "?stream_tickets_next)/i,
  },
  {
    reason:
      "authentication reads the credential (a reference table) with its user's feed version, and on PostgreSQL the poll's answer (counts, a page), in one round trip; on Citus it reads the owner first and names it (s.user_id), so the same statement runs on one shard",
    match:
      /from "(api_keys|sessions)" as "[kt]" inner join "feed_states" as "s" on "s"\."user_id" = "[kt]"\."user_id"/,
  },
  {
    reason:
      "the worker's claim looks for due deliveries of any user, bucket by bucket, without locking (the lease is taken user by user)",
    match: /^select "user_id", "endpoint_id", "bucket" from "webhook_deliveries" where "status" in/,
  },
  {
    reason: "tests find the events a request raised by type and user or org, to assert on them",
    match:
      /^select (\*|"id"|"data") from "events" where "type" = \$1 and "(user|org)_id" = \$2( order by "id")?$/,
  },
  {
    reason: "the operator's queue depth counts every user's due deliveries (metrics)",
    match: /^select count\(\*\) as "depth"/,
  },
  {
    reason: "a test asserting that no user's feed holds an event (a webhook-only type) looks at every feed",
    match: /^select "id" from "notifications" where "event_id" = \$1$/,
  },
  {
    reason:
      "retention looks for expired rows of any user (then deletes them user by user), and for old events (then deletes them by id), keeping the events any feed row or delivery still refers to",
    match:
      /^select ("id", "created_at", "idempotency_key" from "events" where "created_at" <|distinct "event_id" from "(notifications|webhook_deliveries)" where "event_id" in|"id", "user_id"(, "endpoint_id")? from "(notifications|webhook_deliveries)" where ("created_at" <|"status" in \([^)]*\) and "updated_at" <))/,
  },
  {
    reason:
      "new feed rows are written with their counters and their users' feed versions in one statement on PostgreSQL: every part is keyed by the user_id each inserted row carries",
    match:
      /^with "n" as \(insert into "notifications" \("user_id", [^)]*\) select \* from unnest\(.*\) returning "id", "user_id", "type"\), "c" as \(insert into "feed_counters" \("user_id", .* from "n" group by "user_id", "type" .*"v" as \(update "feed_states" as "s" set .* from "n" group by "user_id"\) as "m" where "s"\."user_id" = "m"\."user_id"\) select count\(\*\) from "n"$/,
  },
  {
    reason: "expired stream tickets are swept by expiry, whoever they belong to",
    match: /^delete from "stream_tickets" where "expires_at" </,
  },
];

/** Why `statement` breaks the rule, or undefined when it keeps it (or is allowed to span). */
export function spanningViolation(statement: string): string | undefined {
  const s = statement.replace(/\s+/g, " ").trim();
  if (SPANNING.some((a) => a.match.test(s))) return undefined;
  for (const [table, key] of Object.entries(SHARD_KEYS)) {
    if (!new RegExp(`"${table}"`).test(s)) continue;
    // A filter on the key (a bound value or list).
    const filtered = new RegExp(`"${key}" (= \\$|in \\(|= any)`).test(s);
    // An insert that carries it, or whose key is an id its sequence gives (Citus draws it on
    // the coordinator, then routes the row).
    const inserted =
      new RegExp(`^insert into "${table}" \\(`).test(s) &&
      (key === "id" || new RegExp(`^insert into "${table}" \\([^)]*"${key}"`).test(s));
    const named = filtered || inserted;
    if (!named) return `touches ${table} without a ${key} predicate`;
  }
  return undefined;
}
