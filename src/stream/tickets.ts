import { randomBytes } from "node:crypto";
import { Type } from "typebox";
import type { Deps } from "../deps.js";
import { unauthenticated } from "../errors.js";
import type { Principal } from "../identity/authenticate.js";
import { hashSecret } from "../identity/key-secret.js";
import { toIso } from "../time.js";

/** How long a ticket may wait to be used. */
export const TICKET_TTL_S = 60;

export const StreamTicket = Type.Object({
  ticket: Type.String({ description: "bft_… — pass it as ?ticket= to the stream, once." }),
  expires_at: Type.String({ description: "RFC 3339 UTC; 60 s from now." }),
});

/**
 * Issues a single-use ticket for `GET …/stream?ticket=` (browsers' EventSource cannot send an
 * Authorization header). It acts as the key that asked for it, and only the hash is stored.
 */
export async function createTicket(deps: Deps, principal: Principal) {
  const now = deps.clock();
  const ticket = `bft_${randomBytes(32).toString("base64url")}`;
  const expiresAt = now + TICKET_TTL_S;
  await deps.store.db.deleteFrom("stream_tickets").where("expires_at", "<", now).execute();
  await deps.store.db
    .insertInto("stream_tickets")
    .values({
      secret_hash: hashSecret(ticket),
      key_id: principal.keyId,
      user_id: principal.userId,
      expires_at: expiresAt,
      used_at: null,
    })
    .execute();
  return { ticket, expires_at: toIso(expiresAt) };
}

/**
 * Uses a ticket up: the first call within its minute gets the key's principal (if the key is
 * still valid); a used, expired or unknown ticket is a 401. Atomic, so a ticket works once even
 * when two instances are handed it at the same moment.
 */
export async function redeemTicket(deps: Deps, ticket: string): Promise<Principal> {
  if (!/^bft_[A-Za-z0-9_-]{43}$/.test(ticket)) throw unauthenticated("Invalid stream ticket.");
  const now = deps.clock();
  const used = await deps.store.db
    .updateTable("stream_tickets")
    .set({ used_at: now })
    .where("secret_hash", "=", hashSecret(ticket))
    .where("used_at", "is", null)
    .where("expires_at", ">", now)
    .returning(["key_id", "user_id"])
    .executeTakeFirst();
  if (!used) throw unauthenticated("This stream ticket is unknown, used or expired.");
  const key = await deps.store.db
    .selectFrom("api_keys as k")
    .innerJoin("feed_states as s", "s.user_id", "k.user_id")
    .select(["k.org_id", "k.revoked_at", "s.version"])
    .where("k.id", "=", used.key_id)
    .executeTakeFirstOrThrow();
  if (key.revoked_at !== null) throw unauthenticated("This API key has been revoked.");
  return { userId: used.user_id, keyId: used.key_id, orgId: key.org_id, feedVersion: key.version };
}
