import { createHmac } from "node:crypto";

/**
 * The Standard Webhooks signature, computed here from the spec rather than with src/:
 * HMAC-SHA256 keyed with the base64-decoded secret after `whsec_`, over `id.timestamp.body`.
 */
export function independentSignature(secret: string, id: string, timestamp: string, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}
