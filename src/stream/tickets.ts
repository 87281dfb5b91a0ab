import { randomBytes } from "node:crypto";
import { Type } from "typebox";
import { emptyChanges } from "../bus/change-bus.js";
import type { Deps } from "../deps.js";
import { unauthenticated } from "../errors.js";
import { type Principal, principalOf } from "../identity/authenticate.js";
import { hashSecret } from "../identity/key-secret.js";
import { toIso } from "../time.js";

/** How long a ticket stays good after it is issued, and after its stream's last heartbeat. */
export const TICKET_TTL_S = 60;

export const StreamTicket = Type.Object({
  ticket: Type.String({
    description:
      "bft_… — pass it as ?ticket= to the stream. Good for reconnects (one open stream at a time) until it expires.",
  }),
  expires_at: Type.String({
    description: "RFC 3339 UTC; 60 s from now, pushed on while a stream opened with it stays open.",
  }),
});

/** The claim a stream holds on its ticket: it stays open only while its generation is the newest. */
export interface TicketLease {
  readonly hash: string;
  readonly generation: number;
}

/**
 * Issues a ticket for `GET …/stream?ticket=` (browsers' EventSource cannot send an Authorization
 * header). It acts as the key or session that asked for it, and only the hash is stored; a
 * session's tickets are deleted with it.
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
 * Opens a stream with a ticket. A ticket is good for any number of opens until it expires — so
 * EventSource's automatic reconnect (same URL, after a network drop or a server restart) works —
 * but holds one stream at a time: each open takes the next generation, atomically, and tells every
 * instance (over the change bus) that streams of older generations of this ticket must close. An
 * expired or unknown ticket, or one whose key was revoked or session ended, is a 401.
 */
export async function redeemTicket(
  deps: Deps,
  ticket: string,
): Promise<{ principal: Principal; lease: TicketLease }> {
  if (!/^bft_[A-Za-z0-9_-]{43}$/.test(ticket)) throw unauthenticated("Invalid stream ticket.");
  const now = deps.clock();
  const hash = hashSecret(ticket);
  const taken = await deps.store.db
    .updateTable("stream_tickets")
    .set((eb) => ({ used_at: now, generation: eb("generation", "+", 1) }))
    .where("secret_hash", "=", hash)
    .where("expires_at", ">", now)
    .returning(["key_id", "session_id", "generation"])
    .executeTakeFirst();
  if (!taken) throw unauthenticated("This stream ticket is unknown or expired; request a new one.");
  // The table's check constraint makes exactly one of the two ids set.
  const principal = await principalOf(
    deps,
    taken.session_id !== null
      ? { kind: "session", sessionId: taken.session_id }
      : { kind: "key", keyId: Number(taken.key_id) },
  );
  const lease = { hash, generation: taken.generation };
  const changes = emptyChanges();
  changes.tickets.set(hash, lease.generation);
  deps.store.bus.publish(changes);
  return { principal, lease };
}

/**
 * Called at every heartbeat of a ticket's stream: while the stream still holds the newest
 * generation, the ticket's life is pushed to a full TTL past the next heartbeat, so a stream that
 * drops at any moment leaves the client at least `TICKET_TTL_S` to reconnect with it. False when
 * a newer stream took the ticket (or it is gone): this stream must close.
 */
export async function renewTicket(deps: Deps, lease: TicketLease, heartbeatS: number): Promise<boolean> {
  const result = await deps.store.db
    .updateTable("stream_tickets")
    .set({ expires_at: deps.clock() + heartbeatS + TICKET_TTL_S })
    .where("secret_hash", "=", lease.hash)
    .where("generation", "=", lease.generation)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
