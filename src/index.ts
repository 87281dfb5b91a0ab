/**
 * Belfry as a library: the SDK for webhook receivers, and the pieces to embed the server.
 *
 * @example
 * import { verifyWebhook } from "belfry";
 */

export { type Config, loadConfig } from "./config.js";
export {
  type VerifyOptions,
  verifyWebhook,
  type WebhookHeaders,
  WebhookVerificationError,
} from "./sdk/verify-webhook.js";
export { type RunningServer, startServer } from "./server.js";
