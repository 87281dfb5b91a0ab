import { createHash, hash, randomBytes, timingSafeEqual } from "node:crypto";

/** `bf_` + 43 url-safe characters (32 random bytes): the documented shape of a key. */
export const KEY_PATTERN = /^bf_[A-Za-z0-9_-]{32,}$/;
const PREFIX_LENGTH = 12;

/** A new key secret, its display prefix and the hash that is all the store keeps. */
export function generateKey(): { secret: string; prefix: string; hash: string } {
  const secret = `bf_${randomBytes(32).toString("base64url")}`;
  return { secret, prefix: secret.slice(0, PREFIX_LENGTH), hash: hashSecret(secret) };
}

/** Hex SHA-256. Keys carry 256 random bits, so a fast unsalted hash is the right tool. */
export const hashSecret = (secret: string) => hash("sha256", secret, "hex");

/** Compares two secrets in time that depends only on their hashes' (fixed) length. */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

/** Compares two hex hashes of equal length in constant time. */
export const sameHash = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
