import type { Deps } from "../deps.js";
import { attemptOutcome } from "../metrics/metrics.js";
import { retryUnavailable } from "../store/retry-unavailable.js";
import type { DeliveryStatus } from "../store/schema.js";
import { transact } from "../store/transaction.js";
import { VERSION } from "../version.js";
import { markEndpointFailing, markEndpointHealthy } from "../webhooks/endpoint-health.js";
import { resolveTarget, TargetError } from "../webhooks/endpoint-url.js";
import { holdDeliveries } from "../webhooks/outbox.js";
import {
  type AttemptRecord,
  type Claimed,
  type DeliveryTarget,
  lockClaimedDelivery,
  readDeliveryTarget,
  recordAttempt,
  releaseDelivery,
} from "../webhooks/outbox-claims.js";
import { webhookPayload } from "../webhooks/payload.js";
import { sign } from "../webhooks/signature.js";
import { postWebhook } from "./post-webhook.js";
import { nextDelayMs, retryAfterMs } from "./schedule.js";

/** An attempt starts only if it can end this long before its lease does. */
const LEASE_SAFETY_MS = 1000;

const USER_AGENT = `Belfry-Webhooks/${VERSION}`;

/**
 * Makes one attempt of a claimed delivery and records it. The endpoint and event are read afresh:
 * a delivery whose endpoint was deleted or disabled meanwhile is settled without a request.
 *
 * An outage does not lose the attempt: reading is retried while the lease leaves time for the
 * request (after that the lease runs out and any worker takes the delivery over), and an outcome
 * is kept and recorded once the store is back — so an acknowledged attempt is not sent again
 * unless this worker stops first (`stopping`), which is what at-least-once allows.
 */
export async function deliver(deps: Deps, claimed: Claimed, stopping?: AbortSignal): Promise<void> {
  const retry = { clockMs: deps.clockMs, ...(stopping && { signal: stopping }) };
  const readBy = claimed.leaseUntilMs - deps.webhooks.timeoutMs - LEASE_SAFETY_MS;
  const row = await retryUnavailable(() => readDeliveryTarget(deps.store.db, claimed), {
    until: readBy,
    ...retry,
  });
  if (!row) return;
  if (row.deleted_at !== null || row.disabled_at !== null) {
    const to = row.deleted_at !== null ? "cancelled" : "held";
    await retryUnavailable(() => settle(deps, claimed, to), { until: claimed.leaseUntilMs, ...retry });
    return;
  }
  // The read may have waited out an outage until too close to the lease's end: leave the
  // delivery to whoever takes it over.
  if (deps.clockMs() > readBy) return;
  const attempt = await attemptDelivery(deps, row);
  await retryUnavailable(() => record(deps, claimed, attempt), retry);
  deps.metrics.webhookAttempts.inc({
    outcome: attemptOutcome(attempt.status, attempt.errorClass),
  });
}

/** What one attempt found, with when it was made and the Retry-After it was given. */
type Attempt = AttemptRecord & { retryAfter?: string };

/** Sends the request; what came of it, with when it was made. */
async function attemptDelivery(deps: Deps, row: DeliveryTarget): Promise<Attempt> {
  const attemptedAt = deps.clock();
  const url = new URL(row.url);
  try {
    // Checked again at every attempt: what a name resolves to can change after creation.
    const target = await resolveTarget(deps, url);
    const body = webhookPayload(row);
    const timestamp = Math.floor(deps.clockMs() / 1000);
    const secrets = [row.secret];
    if (row.previous_secret !== null && (row.previous_secret_until ?? 0) > timestamp)
      secrets.push(row.previous_secret);
    const headers = {
      "content-type": "application/json",
      "user-agent": USER_AGENT,
      "webhook-id": row.public_id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": secrets.map((s) => sign(s, row.public_id, timestamp, body)).join(" "),
    };
    return { attemptedAt, ...(await postWebhook(url, target, headers, body, deps.webhooks.timeoutMs)) };
  } catch (error) {
    if (!(error instanceof TargetError)) throw error;
    return { attemptedAt, status: null, body: null, latencyMs: 0, errorClass: error.errorClass };
  }
}

/** Settles a delivery without an attempt: its endpoint was deleted (cancelled) or disabled (held). */
async function settle(deps: Deps, claimed: Claimed, to: DeliveryStatus): Promise<void> {
  const now = deps.clock();
  await transact(deps.store, async (tx) => {
    const d = await lockClaimedDelivery(tx, claimed);
    if (!d?.leased) return;
    await releaseDelivery(tx, d, to, { scheduleStep: d.scheduleStep, nextAttemptAtMs: null, now });
  });
}

/**
 * Records an attempt and moves the delivery on: succeeded; failed with its next attempt
 * scheduled (Retry-After honoured on 429/503); exhausted when the schedule is used up; held when
 * the endpoint answered 410 or has failed everything for the disable period (which disables it
 * and holds its other queued deliveries too). The attempt is always logged; if the lease was lost
 * meanwhile (the endpoint was disabled or deleted, or the delivery restarted), the delivery is
 * left where that move put it.
 */
async function record(deps: Deps, claimed: Claimed, attempt: Attempt): Promise<void> {
  const { webhooks } = deps;
  await transact(deps.store, async (tx) => {
    const d = await lockClaimedDelivery(tx, claimed);
    if (!d) return;
    const endpoint = { userId: d.userId, endpointId: d.endpointId };
    const now = deps.clock();
    const nowMs = deps.clockMs();
    await recordAttempt(tx, claimed, attempt);
    if (!d.leased) return;
    const scheduleStep = d.scheduleStep + 1;
    if (attempt.errorClass === null) {
      await markEndpointHealthy(tx, endpoint);
      await releaseDelivery(tx, d, "succeeded", { scheduleStep, nextAttemptAtMs: null, now });
      return;
    }
    const failingSince = d.endpoint.failingSince ?? now;
    let disable: "gone" | "failing" | undefined;
    if (attempt.status === 410) disable = "gone";
    else if (now - failingSince >= webhooks.disableAfterS) disable = "failing";
    await markEndpointFailing(tx, endpoint, {
      failingSince,
      ...(disable && { disable }),
      alreadyDisabled: d.endpoint.disabledAt !== null,
      now,
    });
    const delay = nextDelayMs(webhooks.scheduleS, scheduleStep);
    const throttled = attempt.status === 429 || attempt.status === 503;
    const wait = throttled ? (retryAfterMs(attempt.retryAfter, nowMs) ?? delay) : delay;
    let to: DeliveryStatus = delay === undefined || wait === undefined ? "exhausted" : "failed";
    if (disable && (to === "failed" || attempt.status === 410)) to = "held";
    await releaseDelivery(tx, d, to, {
      scheduleStep,
      nextAttemptAtMs: to === "failed" ? nowMs + (wait ?? 0) : null,
      now,
    });
    if (disable) await holdDeliveries(tx, endpoint, now);
  });
}
