import type { Deps } from "../deps.js";
import { unauthenticated } from "../errors.js";
import { prepared } from "../store/prepared.js";
import { hashSecret, KEY_PATTERN, sameHash } from "./key-secret.js";

/** Who a request acts as. Org keys act as their user too (SPEC §1). */
export interface Principal {
  userId: number;
  keyId: number;
  orgId: number | null;
  /**
   * The user's feed version, read in the same statement as the key, so a poll answered 304 needs
   * no other query.
   */
  feedVersion: number;
}

/**
 * Resolves an `Authorization` header to the key's user. Reads the store on every call — no cache
 * — so a revocation takes effect on the very next request on every instance.
 */
export async function authenticateKey(deps: Deps, authorization: string | undefined): Promise<Principal> {
  const secret = bearerToken(authorization);
  if (secret === undefined || !KEY_PATTERN.test(secret) || secret.length > 256) throw unauthenticated();
  const hash = hashSecret(secret);
  const [key] = await keyByHash(deps.store.db, hash);
  if (!key || !sameHash(key.secret_hash, hash)) throw unauthenticated();
  if (key.revoked_at !== null) throw unauthenticated("This API key has been revoked.");
  return {
    userId: key.user_id,
    keyId: key.id,
    orgId: key.org_id,
    feedVersion: key.version,
  };
}

const keyByHash = prepared((db, hash: string) =>
  db
    .selectFrom("api_keys as k")
    .innerJoin("feed_states as s", "s.user_id", "k.user_id")
    .select(["k.id", "k.user_id", "k.org_id", "k.secret_hash", "k.revoked_at", "s.version"])
    .where("k.secret_hash", "=", hash),
);

/** The token of `Bearer <token>` (scheme case-insensitive), or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
  return m?.[1];
}
