import type { Deps } from "../deps.js";
import { attemptOutcome } from "../metrics/metrics.js";
import { retryUnavailable } from "../store/retry-unavailable.js";
import type { DeliveryStatus } from "../store/schema.js";
import { type Tx, transact } from "../store/transaction.js";
import { VERSION } from "../version.js";
import { resolveTarget, TargetError } from "../webhooks/endpoint-url.js";
import { count, moveDeliveries } from "../webhooks/outbox.js";
import { webhookPayload } from "../webhooks/payload.js";
import { sign } from "../webhooks/signature.js";
import { nextDelayMs, retryAfterMs } from "./schedule.js";
import { type AttemptOutcome, send } from "./send.js";

/** A delivery a worker holds the lease of. */
export interface Claimed {
  id: number;
  leaseToken: string;
  /** When the lease runs out (epoch ms) and another worker may take the delivery over. */
  leaseUntilMs: number;
}

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
  const signal = stopping ? { signal: stopping } : {};
  const readBy = claimed.leaseUntilMs - deps.webhooks.timeoutMs - LEASE_SAFETY_MS;
  const row = await retryUnavailable(() => read(deps, claimed), { until: readBy, ...signal });
  if (!row) return;
  if (row.deleted_at !== null || row.disabled_at !== null) {
    const to = row.deleted_at !== null ? "cancelled" : "held";
    await retryUnavailable(() => settle(deps, claimed, to), { until: claimed.leaseUntilMs, ...signal });
    return;
  }
  // The read may have waited out an outage until too close to the lease's end: leave the
  // delivery to whoever takes it over.
  if (Date.now() > readBy) return;
  const outcome = await attempt(deps, row);
  await retryUnavailable(() => record(deps, claimed, outcome), signal);
  deps.metrics.webhookAttempts.inc({
    outcome: attemptOutcome(outcome.outcome.status, outcome.outcome.errorClass),
  });
}

function read(deps: Deps, claimed: Claimed) {
  return deps.store.db
    .selectFrom("webhook_deliveries as d")
    .innerJoin("webhook_endpoints as w", "w.id", "d.endpoint_id")
    .innerJoin("events as e", "e.id", "d.event_id")
    .select([
      "w.url",
      "w.secret",
      "w.previous_secret",
      "w.previous_secret_until",
      "w.disabled_at",
      "w.deleted_at",
      "e.public_id",
      "e.type",
      "e.occurred_at",
      "e.data",
      "e.overrides",
    ])
    .where("d.id", "=", claimed.id)
    .executeTakeFirst();
}

type Target = NonNullable<Awaited<ReturnType<typeof read>>>;

/** Sends the request; what came of it, with when it was made. */
async function attempt(deps: Deps, row: Target): Promise<Attempt> {
  const attemptedAt = deps.clock();
  const url = new URL(row.url);
  let outcome: AttemptOutcome;
  try {
    // Checked again at every attempt: what a name resolves to can change after creation.
    const target = await resolveTarget(deps, url);
    const body = webhookPayload(row);
    const timestamp = Math.floor(Date.now() / 1000);
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
    outcome = await send(url, target, headers, body, deps.webhooks.timeoutMs);
  } catch (error) {
    if (!(error instanceof TargetError)) throw error;
    outcome = { status: null, body: null, latencyMs: 0, errorClass: error.errorClass };
  }
  return { attemptedAt, outcome };
}

interface Attempt {
  attemptedAt: number;
  outcome: AttemptOutcome;
}

/**
 * Locks the claimed delivery's endpoint, then the delivery — the order every writer of
 * deliveries follows — and returns the delivery with whether this worker still holds its lease.
 */
async function lockDelivery(tx: Tx, claimed: Claimed) {
  const pg = tx.dialect === "postgres";
  const endpoint = tx.trx
    .selectFrom("webhook_endpoints")
    .select(["id", "failing_since", "disabled_at"])
    .where("id", "=", (eb) =>
      eb.selectFrom("webhook_deliveries").select("endpoint_id").where("id", "=", claimed.id),
    );
  const e = await (pg ? endpoint.forUpdate() : endpoint).executeTakeFirst();
  const delivery = tx.trx
    .selectFrom("webhook_deliveries")
    .select(["endpoint_id", "status", "schedule_step", "lease_token"])
    .where("id", "=", claimed.id);
  const d = await (pg ? delivery.forUpdate() : delivery).executeTakeFirst();
  if (!e || !d) return undefined;
  return { ...d, endpoint: e, leased: d.lease_token === claimed.leaseToken };
}

async function settle(deps: Deps, claimed: Claimed, to: DeliveryStatus): Promise<void> {
  const now = deps.clock();
  await transact(deps.store, async (tx) => {
    const d = await lockDelivery(tx, claimed);
    if (!d?.leased) return;
    await setStatus(tx, claimed.id, d.endpoint_id, d.status, to, {
      schedule_step: d.schedule_step,
      next: null,
      now,
    });
  });
}

async function setStatus(
  tx: Tx,
  id: number,
  endpointId: number,
  from: DeliveryStatus,
  to: DeliveryStatus,
  { schedule_step, next, now }: { schedule_step: number; next: number | null; now: number },
): Promise<void> {
  await tx.trx
    .updateTable("webhook_deliveries")
    .set({
      status: to,
      schedule_step,
      next_attempt_at_ms: next,
      lease_token: null,
      lease_until_ms: null,
      updated_at: now,
    })
    .where("id", "=", id)
    .execute();
  if (from !== to) {
    await count(tx, endpointId, from, -1);
    await count(tx, endpointId, to, 1);
  }
}

/**
 * Records an attempt and moves the delivery on: succeeded; failed with its next attempt
 * scheduled (Retry-After honoured on 429/503); exhausted when the schedule is used up; held when
 * the endpoint answered 410 or has failed everything for the disable period (which disables it
 * and holds its other queued deliveries too). The attempt is always logged; if the lease was lost
 * meanwhile (the endpoint was disabled or deleted, or the delivery restarted), the delivery is
 * left where that move put it.
 */
async function record(deps: Deps, claimed: Claimed, { attemptedAt, outcome }: Attempt): Promise<void> {
  const { webhooks } = deps;
  await transact(deps.store, async (tx) => {
    const d = await lockDelivery(tx, claimed);
    if (!d) return;
    const { trx } = tx;
    const now = deps.clock();
    const nowMs = Date.now();
    const last = await trx
      .selectFrom("webhook_attempts")
      .select((eb) => eb.fn.max("number").as("n"))
      .where("delivery_id", "=", claimed.id)
      .executeTakeFirst();
    await trx
      .insertInto("webhook_attempts")
      .values({
        delivery_id: claimed.id,
        number: Number(last?.n ?? 0) + 1,
        attempted_at: attemptedAt,
        response_status: outcome.status,
        response_body: outcome.body,
        latency_ms: outcome.latencyMs,
        error_class: outcome.errorClass,
      })
      .execute();
    if (!d.leased) return;
    const step = d.schedule_step + 1;
    if (outcome.errorClass === null) {
      await trx
        .updateTable("webhook_endpoints")
        .set({ failing_since: null })
        .where("id", "=", d.endpoint_id)
        .execute();
      await setStatus(tx, claimed.id, d.endpoint_id, d.status, "succeeded", {
        schedule_step: step,
        next: null,
        now,
      });
      return;
    }
    const { endpoint } = d;
    const failingSince = endpoint.failing_since ?? now;
    let disable: "gone" | "failing" | undefined;
    if (outcome.status === 410) disable = "gone";
    else if (now - failingSince >= webhooks.disableAfterS) disable = "failing";
    await trx
      .updateTable("webhook_endpoints")
      .set({
        failing_since: failingSince,
        ...(disable && endpoint.disabled_at === null && { disabled_at: now, disabled_reason: disable }),
      })
      .where("id", "=", d.endpoint_id)
      .execute();
    const delay = nextDelayMs(webhooks.scheduleS, step);
    const throttled = outcome.status === 429 || outcome.status === 503;
    const wait = throttled ? (retryAfterMs(outcome.retryAfter, nowMs) ?? delay) : delay;
    let to: DeliveryStatus = delay === undefined || wait === undefined ? "exhausted" : "failed";
    if (disable && (to === "failed" || outcome.status === 410)) to = "held";
    await setStatus(tx, claimed.id, d.endpoint_id, d.status, to, {
      schedule_step: step,
      next: to === "failed" ? nowMs + (wait ?? 0) : null,
      now,
    });
    if (disable) await moveDeliveries(tx, d.endpoint_id, ["pending", "failed"], "held", now);
  });
}
