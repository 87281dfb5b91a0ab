import type { Tx } from "../store/transaction.js";
import type { EndpointRef } from "./outbox.js";

/**
 * An endpoint's failure streak and automatic disabling, as delivery attempts report them. The
 * caller holds the endpoint's lock (see outbox-claims.ts `recordOutcomes`).
 */

/** A 2xx ends the endpoint's failure streak. */
export async function markEndpointHealthy(tx: Tx, { userId, endpointId }: EndpointRef): Promise<void> {
  await tx.trx
    .updateTable("webhook_endpoints")
    .set({ failing_since: null })
    .where("user_id", "=", userId)
    .where("id", "=", endpointId)
    .execute();
}

/**
 * A failed attempt: the streak starts (or goes on) at `failingSince`, and with `disable` the
 * endpoint is switched off for that reason unless it already is.
 */
export async function markEndpointFailing(
  tx: Tx,
  { userId, endpointId }: EndpointRef,
  {
    failingSince,
    disable,
    alreadyDisabled,
    now,
  }: { failingSince: number; disable?: "gone" | "failing"; alreadyDisabled: boolean; now: number },
): Promise<void> {
  await tx.trx
    .updateTable("webhook_endpoints")
    .set({
      failing_since: failingSince,
      ...(disable && !alreadyDisabled && { disabled_at: now, disabled_reason: disable }),
    })
    .where("user_id", "=", userId)
    .where("id", "=", endpointId)
    .execute();
}
