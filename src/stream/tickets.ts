import { randomBytes } from "node:crypto";
import { Type } from "typebox";
import type { Deps } from "../deps.js";
import { unauthenticated } from "../errors.js";
import { type Principal, principalOf } from "../identity/authenticate.js";
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
 * Authorization header). It acts as the key or session that asked for it, and only the hash is
 * stored; a session's unused tickets are deleted with it.
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
      key_id: principal.kind === "key" ? principal.keyId : null,
      session_id: principal.kind === "session" ? principal.sessionId : null,
      user_id: principal.userId,
      expires_at: expiresAt,
      used_at: null,
    })
    .execute();
  return { ticket, expires_at: toIso(expiresAt) };
}

/**
 * Uses a ticket up: the first call within its minute gets the principal of the key or session
 * that asked for it (if that still works); a used, expired or unknown ticket is a 401. Atomic, so
 * a ticket works once even when two instances are handed it at the same moment.
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
    .returning(["key_id", "session_id"])
    .executeTakeFirst();
  if (!used) throw unauthenticated("This stream ticket is unknown, used or expired.");
  // The table's check constraint makes exactly one of the two ids set.
  if (used.session_id !== null) return principalOf(deps, { kind: "session", sessionId: used.session_id });
  return principalOf(deps, { kind: "key", keyId: Number(used.key_id) });
}
