import type { WebhookConfig } from "../config.js";
import type { Deps } from "../deps.js";
import { VERSION } from "../version.js";
import type { AttemptRecord, DeliveryEvent, EndpointTarget, PlanAttempt } from "../webhooks/outbox-claims.js";
import { webhookPayload } from "../webhooks/payload.js";
import { sign } from "../webhooks/signature.js";
import type { ConnectionPool } from "./connection-pool.js";
import { postWebhook } from "./post-webhook.js";
import { nextDelayMs, retryAfterMs } from "./schedule.js";

const USER_AGENT = `Belfry-Webhooks/${VERSION}`;

/**
 * Makes one attempt: the event's payload, signed with the endpoint's secret (and the previous
 * one during a rotation's overlap), POSTed over the pool to `url` (the endpoint's, parsed). A refused or unresolvable address is an
 * attempt too, recorded as `blocked` or `dns` without a packet sent.
 */
export async function attemptDelivery(
  deps: Deps,
  pool: ConnectionPool,
  endpoint: EndpointTarget,
  url: URL,
  event: DeliveryEvent,
): Promise<AttemptRecord> {
  const attemptedAt = deps.clock();
  const body = webhookPayload(event);
  const timestamp = Math.floor(deps.clockMs() / 1000);
  const secrets = [endpoint.secret];
  if (endpoint.previousSecret !== null && (endpoint.previousSecretUntil ?? 0) > timestamp)
    secrets.push(endpoint.previousSecret);
  const headers = {
    "content-type": "application/json",
    "user-agent": USER_AGENT,
    "webhook-id": event.public_id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": secrets.map((s) => sign(s, event.public_id, timestamp, body)).join(" "),
  };
  const outcome = await postWebhook(pool, url, headers, body, deps.webhooks.timeoutMs);
  return { attemptedAt, ...outcome };
}

/**
 * The delivery schedule, as `recordOutcomes` applies it: a 2xx succeeds and ends the endpoint's
 * failure streak; a failure schedules the next attempt (Retry-After honoured on 429/503) or
 * exhausts the schedule; a 410, or failing everything for the disable period, disables the
 * endpoint and holds the delivery.
 */
export function scheduleAttempts(webhooks: WebhookConfig, clockMs: () => number): PlanAttempt {
  return ({ attempt, scheduleStep: made, failingSince: since, now }) => {
    const scheduleStep = made + 1;
    if (attempt.errorClass === null)
      return { to: "succeeded", scheduleStep, nextAttemptAtMs: null, failingSince: null };
    const failingSince = since ?? now;
    let disable: "gone" | "failing" | undefined;
    if (attempt.status === 410) disable = "gone";
    else if (now - failingSince >= webhooks.disableAfterS) disable = "failing";
    const nowMs = clockMs();
    const delay = nextDelayMs(webhooks.scheduleS, scheduleStep);
    const throttled = attempt.status === 429 || attempt.status === 503;
    const wait = throttled ? (retryAfterMs(attempt.retryAfter, nowMs) ?? delay) : delay;
    let to: "failed" | "exhausted" | "held" =
      delay === undefined || wait === undefined ? "exhausted" : "failed";
    if (disable && (to === "failed" || attempt.status === 410)) to = "held";
    return {
      to,
      scheduleStep,
      nextAttemptAtMs: to === "failed" ? nowMs + (wait ?? 0) : null,
      failingSince,
      ...(disable && { disable }),
    };
  };
}
