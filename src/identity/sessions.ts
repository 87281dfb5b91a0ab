import { randomBytes } from "node:crypto";
import { type Static, Type } from "typebox";
import type { Deps } from "../deps.js";
import type { Executor } from "../store/store.js";
import { type Tx, transact } from "../store/transaction.js";
import { toIso } from "../time.js";
import { validator } from "../validation.js";
import { hashSecret } from "./key-secret.js";
import { routable } from "./routable.js";
import { lockUserOrThrow } from "./users.js";

/**
 * Browser sessions: a short-lived token the platform's backend mints for its signed-in user and
 * hands to the browser, so the browser never holds a long-lived `bf_` key. A session acts as its
 * user on the feed, the settings and the stream; webhooks and orgs need a key. This module owns
 * the `sessions` table.
 */

/** `bfs_` + 43 url-safe characters (32 random bytes): the only shape Belfry issues. */
export const SESSION_PATTERN = /^bfs_[A-Za-z0-9_-]{43}$/;

export const SESSION_TTL_DEFAULT_S = 3600;
export const SESSION_TTL_MIN_S = 60;
export const SESSION_TTL_MAX_S = 86_400;
/** Sessions one user may hold; minting another ends the oldest (GitHub does this with OAuth tokens). */
export const MAX_SESSIONS_PER_USER = 1000;
/**
 * Expired sessions are kept this long before the sweep deletes them, so their holder is told
 * "expired" (and knows to ask for a new one) rather than "unknown".
 */
const EXPIRED_KEPT_S = 86_400;
/** At most this many long-expired sessions are deleted per mint: every mint does bounded work. */
const SWEEP_BATCH = 100;

export const Session = Type.Object({
  token: Type.String(),
  user_id: Type.Integer(),
  expires_at: Type.String(),
});
export type Session = Static<typeof Session>;

export const CreateSessionRequest = Type.Object(
  {
    ttl_seconds: Type.Optional(
      Type.Integer({
        minimum: SESSION_TTL_MIN_S,
        maximum: SESSION_TTL_MAX_S,
        errorMessage: `must be an integer from ${SESSION_TTL_MIN_S} to ${SESSION_TTL_MAX_S} (seconds)`,
      }),
    ),
  },
  { additionalProperties: false },
);
const validateCreate = validator(CreateSessionRequest);

/**
 * Mints a session for a user (`POST /admin/v1/users/:user_id/sessions`), valid `ttl_seconds`
 * (default 3600). No body is the same as `{}`. Sweeps a batch of long-expired sessions, and ends
 * the user's oldest sessions past {@link MAX_SESSIONS_PER_USER}.
 *
 * @example
 * const { token } = await createSession(deps, 42, { ttl_seconds: 900 }); // "bfs_…"
 */
export async function createSession(deps: Deps, userId: number, body: unknown): Promise<Session> {
  const { ttl_seconds: ttl = SESSION_TTL_DEFAULT_S } = validateCreate.parse(body === undefined ? {} : body);
  const now = deps.clock();
  const token = `bfs_${randomBytes(32).toString("base64url")}`;
  const expiresAt = now + ttl;
  return transact(deps.store, async (tx) => {
    // Mints and ends of one user take turns, so the cap holds and an end is never outrun.
    await lockUserOrThrow(tx, userId);
    await sweepExpired(tx, now);
    await keepRoomForOne(tx, userId);
    await tx.trx
      .insertInto("sessions")
      .values({ user_id: userId, secret_hash: hashSecret(token), created_at: now, expires_at: expiresAt })
      .execute();
    return { token, user_id: userId, expires_at: toIso(expiresAt) };
  });
}

/**
 * Ends every session of a user (`DELETE /admin/v1/users/:user_id/sessions`): their next request
 * is refused on every instance, their unused stream tickets go with them, and their open streams
 * close as soon as the bus reports it.
 */
export async function endSessions(deps: Deps, userId: number): Promise<void> {
  await transact(deps.store, async (tx) => {
    await lockUserOrThrow(tx, userId);
    const { numDeletedRows } = await tx.trx
      .deleteFrom("sessions")
      .where("user_id", "=", userId)
      .executeTakeFirst();
    if (numDeletedRows > 0n) tx.changes.endedSessions.add(userId);
  });
}

/** Deletes the oldest sessions of the user beyond the newest `MAX - 1`, announcing it when any go. */
async function keepRoomForOne(tx: Tx, userId: number): Promise<void> {
  const { trx } = tx;
  const oldestKept = await trx
    .selectFrom("sessions")
    .select("id")
    .where("user_id", "=", userId)
    .orderBy("id", "desc")
    .limit(1)
    .offset(MAX_SESSIONS_PER_USER - 2)
    .executeTakeFirst();
  if (!oldestKept) return;
  const { numDeletedRows } = await trx
    .deleteFrom("sessions")
    .where("user_id", "=", userId)
    .where("id", "<", oldestKept.id)
    .executeTakeFirst();
  if (numDeletedRows > 0n) tx.changes.endedSessions.add(userId);
}

/** Deletes a batch of sessions that expired more than a day ago (whoever they belong to). */
async function sweepExpired(tx: Tx, now: number): Promise<void> {
  const { trx } = tx;
  await trx
    .deleteFrom("sessions")
    .where("id", "in", (eb) =>
      eb
        .selectFrom("sessions")
        .select("id")
        .where("expires_at", "<", now - EXPIRED_KEPT_S)
        .orderBy("expires_at")
        .limit(SWEEP_BATCH),
    )
    .execute();
}

/**
 * The session whose token hashes to `hash`, with its user's feed state as `s`: the hot
 * authentication read (see `CredentialRead`, which may add to it).
 */
export const sessionLookup = (db: Executor, hash: string, owner?: number) =>
  db
    .selectFrom("sessions as t")
    .innerJoin("feed_states as s", "s.user_id", "t.user_id")
    .select(["t.id", "t.user_id", "t.secret_hash", "t.expires_at", "s.version"])
    .where("t.secret_hash", "=", hash)
    .$if(owner !== undefined, (q) => q.where("s.user_id", "=", owner as number));

/** A session and its user's feed version, by id (stream tickets, live streams re-checking). */
export const sessionById = routable((db, owner, id: number) =>
  db
    .selectFrom("sessions as t")
    .innerJoin("feed_states as s", "s.user_id", "t.user_id")
    .select(["t.id", "t.user_id", "t.expires_at", "s.version"])
    .where("t.id", "=", id)
    .$if(owner !== undefined, (q) => q.where("s.user_id", "=", owner as number)),
);
