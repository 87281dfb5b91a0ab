import { describe, expect, it } from "vitest";
import { spanningViolation } from "./support/single-shard-rules.js";

// The rule the run-wide SQL capture applies (test/support/sql-capture-setup.ts), on known statements.
describe("the single-shard rule", () => {
  it("flags a statement on a per-user table that does not name the user", () => {
    expect(spanningViolation(`select * from "webhook_deliveries" where "id" = $1`)).toBe(
      "touches webhook_deliveries without a user_id predicate",
    );
    expect(spanningViolation(`update "stream_tickets" set "used_at" = $1 where "key_id" = $2`)).toBe(
      "touches stream_tickets without a secret_hash predicate",
    );
    expect(spanningViolation(`select "data" from "events" where "type" = $1`)).toBe(
      "touches events without a id predicate",
    );
  });

  it("passes statements that name the user, inserts that carry it, and the allowed spans", () => {
    expect(
      spanningViolation(`select "id" from "notifications" where "user_id" = $1 and "id" = $2`),
    ).toBeUndefined();
    expect(
      spanningViolation(`insert into "webhook_attempts" ("user_id", "delivery_id") values ($1, $2)`),
    ).toBeUndefined();
    expect(spanningViolation(`delete from "stream_tickets" where "expires_at" < $1`)).toBeUndefined();
    // An event's id comes from its sequence, drawn on the coordinator before the row is routed.
    expect(spanningViolation(`insert into "events" ("type", "data") values ($1, $2)`)).toBeUndefined();
    expect(
      spanningViolation(`select "idempotency_key" from "event_keys" where "idempotency_key" in ($1, $2)`),
    ).toBeUndefined();
    expect(spanningViolation(`select * from "users" where "id" = $1`)).toBeUndefined();
  });
});
