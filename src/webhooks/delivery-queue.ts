import { sql } from "kysely";
import type { Deps } from "../deps.js";

/**
 * The delivery queue as an operator sees it: deliveries pending or failed (waiting for an attempt
 * or a retry), and how long the most overdue one has been due. One statement over the partial
 * index of due deliveries.
 */
export async function deliveryQueue(deps: Deps): Promise<{ depth: number; oldestDueAgeS: number }> {
  const nowMs = deps.clockMs();
  const row = await deps.store.db
    .selectFrom("webhook_deliveries")
    .select([sql<number>`count(*)`.as("depth"), sql<number | null>`min(next_attempt_at_ms)`.as("oldest")])
    .where("status", "in", ["pending", "failed"])
    .executeTakeFirstOrThrow();
  const overdueMs = row.oldest === null ? 0 : Math.max(0, nowMs - Number(row.oldest));
  return { depth: Number(row.depth), oldestDueAgeS: overdueMs / 1000 };
}
