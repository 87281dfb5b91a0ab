import { timingSafeEqual } from "node:crypto";
import { sign } from "../webhooks/signature.js";

/** Thrown by {@link verifyWebhook} when a request is not a genuine, fresh Belfry webhook. */
export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
}

/** Headers as Node (`req.headers`), fetch (`Headers`) or a plain object give them. */
export type WebhookHeaders =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** How far the `webhook-timestamp` may be from now, either way. Default 300 s. */
  toleranceSeconds?: number;
  /** Now, in unix seconds (for tests). */
  now?: number;
}

/**
 * Verifies a webhook per the Standard Webhooks spec and returns its parsed payload. Pass the raw
 * body exactly as received (before any JSON parsing). Accepts any one valid `v1,` signature, so a
 * secret rotation on Belfry's side goes unnoticed by receivers that know either secret.
 *
 * @example
 * const event = verifyWebhook(process.env.BELFRY_WEBHOOK_SECRET, req.headers, rawBody);
 * if (event.type === "system.payment.received") …
 */
export function verifyWebhook(
  secret: string,
  headers: WebhookHeaders,
  rawBody: string | Buffer,
  { toleranceSeconds = 300, now = Math.floor(Date.now() / 1000) }: VerifyOptions = {},
): { id: string; type: string; created_at: string; data: Record<string, unknown>; [key: string]: unknown } {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures)
    throw new WebhookVerificationError("Missing webhook-id, -timestamp or -signature header.");
  if (!/^\d+$/.test(timestamp) || Math.abs(now - Number(timestamp)) > toleranceSeconds) {
    throw new WebhookVerificationError("The webhook timestamp is too old or too new.");
  }
  const body = typeof rawBody === "string" ? rawBody : rawBody.toString("utf8");
  // Signed over the header exactly as sent, not a re-formatted number.
  const expected = Buffer.from(sign(secret, id, timestamp, body));
  const ok = signatures.split(" ").some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!ok) throw new WebhookVerificationError("No signature matches.");
  return JSON.parse(body);
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value[0] : value;
}
