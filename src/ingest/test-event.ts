import type { Deps } from "../deps.js";
import { raiseEvent } from "../events/raise.js";
import { memberDirectory } from "../identity/memberships.js";
import { transact } from "../store/transaction.js";
import { lockEndpoint } from "../webhooks/endpoints.js";
import { queueDelivery } from "../webhooks/outbox.js";

/**
 * Raises a `webhook.test` event for this endpoint alone, whatever its event-type filter
 * (`POST /api/v1/me/webhooks/:id/test`): held, like any delivery, while the endpoint is disabled.
 */
export async function sendTestEvent(deps: Deps, userId: number, endpointId: number) {
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const endpoint = await lockEndpoint(tx, userId, endpointId);
    const { eventId } = await raiseEvent(tx, memberDirectory(tx.trx), {
      type: "webhook.test",
      data: {},
      userId,
      occurredAt: now,
      createdAt: now,
    });
    const id = await queueDelivery(tx, { userId, endpointId }, eventId, endpoint.disabled_at !== null, now);
    return { delivery_id: id };
  });
}
