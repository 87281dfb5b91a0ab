import { createHmac, randomBytes } from "node:crypto";

/** A new signing secret: `whsec_` + base64 of 32 random bytes (Standard Webhooks). */
export const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

/** The HMAC key of a `whsec_…` secret: the bytes its base64 part encodes. */
export const secretKey = (secret: string) => Buffer.from(secret.replace(/^whsec_/, ""), "base64");

/**
 * One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `<id>.<timestamp>.<body>`.
 *
 * @example
 * sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
 * // → "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
 */
export function sign(secret: string, id: string, timestamp: number | string, body: string): string {
  const mac = createHmac("sha256", secretKey(secret)).update(`${id}.${timestamp}.${body}`).digest("base64");
  return `v1,${mac}`;
}
