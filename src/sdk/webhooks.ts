/**
 * `belfry/webhooks`: for the receivers of Belfry's webhooks. Verifies the Standard Webhooks
 * signature of a delivery (Node: it uses `node:crypto`).
 *
 * @example
 * import { verifyWebhook } from "belfry/webhooks";
 * const event = verifyWebhook(process.env.BELFRY_WEBHOOK_SECRET, req.headers, rawBody);
 */
export {
  type VerifyOptions,
  verifyWebhook,
  type WebhookHeaders,
  WebhookVerificationError,
} from "./verify-webhook.js";
