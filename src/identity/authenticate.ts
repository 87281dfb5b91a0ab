import type { Deps } from "../deps.js";
import { unauthenticated } from "../errors.js";
import { prepared } from "../store/prepared.js";
import type { Executor } from "../store/store.js";
import { hashSecret, KEY_PATTERN, sameHash } from "./key-secret.js";
import { routable } from "./routable.js";
import { SESSION_PATTERN, sessionById, sessionLookup } from "./sessions.js";

/** What a request presented: an API key (personal or org), or a browser session. */
export type Credential =
  | { kind: "key"; keyId: number; orgId: number | null }
  | { kind: "session"; sessionId: number };

/** Which credential, by id (a {@link Principal} is one). */
export type CredentialId = { kind: "key"; keyId: number } | { kind: "session"; sessionId: number };

/**
 * Who a request acts as, and with what. Org keys act as their user too; so does a session, but
 * only where sessions are allowed (the feed, settings, the stream).
 */
export type Principal = Credential & {
  userId: number;
  /**
   * The user's feed version, read in the same statement as the credential, so a poll answered
   * 304 needs no other query.
   */
  feedVersion: number;
};

/** A credential as one string (`key:12`, `session:7`), for counting what each one holds. */
export const credentialOf = (c: CredentialId): string =>
  c.kind === "key" ? `key:${c.keyId}` : `session:${c.sessionId}`;

/** The one place a {@link Principal} is made. */
const toPrincipal = (credential: Credential, userId: number, feedVersion: number): Principal => ({
  ...credential,
  userId,
  feedVersion,
});

const INVALID_SESSION = "Invalid or ended session token.";
const EXPIRED_SESSION = "This session has expired.";
const REVOKED_KEY = "This API key has been revoked.";

/** The credential columns every lookup by secret reads (with the user's feed version). */
export interface KeyRow {
  id: number;
  user_id: number;
  org_id: number | null;
  secret_hash: string;
  revoked_at: number | null;
  version: number;
}
export interface SessionRow {
  id: number;
  user_id: number;
  secret_hash: string;
  expires_at: number;
  version: number;
}

/**
 * How a credential is looked up by its secret's hash: the key or session with its user's feed
 * version, and whatever else the statement reads in the same round trip (a poll's counts, a
 * page). `X` is what each row carries besides the credential; a lookup may return several rows
 * of one credential (a page's rows), or none. Built on {@link keyLookup} and `sessionLookup`.
 */
export interface CredentialRead<X> {
  /** `owner`: the key's user, named on a sharded store (see `routable`). */
  key(db: Executor, hash: string, owner?: number): Promise<(KeyRow & X)[]>;
  session(db: Executor, hash: string, owner?: number): Promise<(SessionRow & X)[]>;
}

/**
 * The key whose secret hashes to `hash`, with its user's feed state as `s` (one indexed read);
 * with `owner`, only if it is that user's (see `routable`).
 */
export const keyLookup = (db: Executor, hash: string, owner?: number) =>
  db
    .selectFrom("api_keys as k")
    .innerJoin("feed_states as s", "s.user_id", "k.user_id")
    .select(["k.id", "k.user_id", "k.org_id", "k.secret_hash", "k.revoked_at", "s.version"])
    .where("k.secret_hash", "=", hash)
    .$if(owner !== undefined, (q) => q.where("s.user_id", "=", owner as number));

const keyOnly = routable((db, owner, hash: string) => keyLookup(db, hash, owner));
const sessionOnly = routable((db, owner, hash: string) => sessionLookup(db, hash, owner));
const CREDENTIAL_ONLY: CredentialRead<object> = {
  key: (db, hash, owner) => keyOnly(db, owner, hash),
  session: (db, hash, owner) => sessionOnly(db, owner, hash),
};

/** Whose a credential is, from its own table (a reference table on Citus: no shard asked). */
const keyOwner = prepared((db, hash: string) =>
  db.selectFrom("api_keys").select("user_id").where("secret_hash", "=", hash),
);
const sessionOwner = prepared((db, hash: string) =>
  db.selectFrom("sessions").select("user_id").where("secret_hash", "=", hash),
);

/**
 * On a sharded store, the user a credential belongs to (null: no such credential), read first
 * so the credential read can name its shard; elsewhere undefined, and the one statement does it.
 */
async function ownerFor<C>(
  deps: Deps,
  lookup: (db: Executor, credential: C) => Promise<{ user_id: number }[]>,
  credential: C,
): Promise<number | null | undefined> {
  if (!(await deps.store.sharded())) return undefined;
  const [row] = await lookup(deps.store.db, credential);
  return row ? row.user_id : null;
}

/**
 * Resolves an `Authorization: Bearer` header to its principal: a `bfs_` token is looked up among
 * sessions, anything else among keys, so a key costs no extra lookup. Reads the store on every
 * call — no cache — so a revocation or an ended session takes effect on the very next request on
 * every instance. Each lookup is one indexed statement that also reads the feed version.
 */
export async function authenticate(
  deps: Deps,
  authorization: string | undefined,
  hash: (secret: string) => string = hashSecret,
): Promise<Principal> {
  return (await authenticateWith(deps, authorization, CREDENTIAL_ONLY, hash)).principal;
}

/**
 * {@link authenticate} with a lookup that reads more in the same statement (see
 * {@link CredentialRead}): the principal, and the statement's rows once the credential checked out.
 * `hash` is {@link hashSecret}, or a caller's copy of it that already hashed this secret.
 */
export async function authenticateWith<X>(
  deps: Deps,
  authorization: string | undefined,
  read: CredentialRead<X>,
  hash: (secret: string) => string = hashSecret,
): Promise<{ principal: Principal; rows: X[] }> {
  const secret = bearerToken(authorization);
  if (secret?.startsWith("bfs_")) {
    if (!SESSION_PATTERN.test(secret)) throw unauthenticated(INVALID_SESSION);
    const hashed = hash(secret);
    const owner = await ownerFor(deps, sessionOwner, hashed);
    if (owner === null) throw unauthenticated(INVALID_SESSION);
    const rows = await read.session(deps.store.db, hashed, owner);
    const session = rows[0];
    if (!session || !sameHash(session.secret_hash, hashed)) throw unauthenticated(INVALID_SESSION);
    if (session.expires_at <= deps.clock()) throw unauthenticated(EXPIRED_SESSION);
    const principal = toPrincipal(
      { kind: "session", sessionId: session.id },
      session.user_id,
      session.version,
    );
    return { principal, rows };
  }
  if (secret === undefined || !KEY_PATTERN.test(secret) || secret.length > 256) throw unauthenticated();
  const hashed = hash(secret);
  const owner = await ownerFor(deps, keyOwner, hashed);
  if (owner === null) throw unauthenticated();
  const rows = await read.key(deps.store.db, hashed, owner);
  const key = rows[0];
  if (!key || !sameHash(key.secret_hash, hashed)) throw unauthenticated();
  if (key.revoked_at !== null) throw unauthenticated(REVOKED_KEY);
  const principal = toPrincipal({ kind: "key", keyId: key.id, orgId: key.org_id }, key.user_id, key.version);
  return { principal, rows };
}

/**
 * The principal of a credential known by id (a stream ticket's, a live stream's re-check), if it
 * still works: a revoked key, an ended or expired session → 401.
 */
export async function principalOf(deps: Deps, credential: CredentialId): Promise<Principal> {
  if (credential.kind === "session") {
    const owner = await ownerFor(deps, sessionOwnerById, credential.sessionId);
    const [session] = owner === null ? [] : await sessionById(deps.store.db, owner, credential.sessionId);
    if (!session) throw unauthenticated(INVALID_SESSION);
    if (session.expires_at <= deps.clock()) throw unauthenticated(EXPIRED_SESSION);
    return toPrincipal({ kind: "session", sessionId: session.id }, session.user_id, session.version);
  }
  const owner = await ownerFor(deps, keyOwnerById, credential.keyId);
  const [key] = owner === null ? [] : await keyById(deps.store.db, owner, credential.keyId);
  if (!key) throw unauthenticated();
  if (key.revoked_at !== null) throw unauthenticated(REVOKED_KEY);
  return toPrincipal({ kind: "key", keyId: key.id, orgId: key.org_id }, key.user_id, key.version);
}

const keyById = routable((db, owner, id: number) =>
  db
    .selectFrom("api_keys as k")
    .innerJoin("feed_states as s", "s.user_id", "k.user_id")
    .select(["k.id", "k.user_id", "k.org_id", "k.revoked_at", "s.version"])
    .where("k.id", "=", id)
    .$if(owner !== undefined, (q) => q.where("s.user_id", "=", owner as number)),
);
const keyOwnerById = prepared((db, id: number) =>
  db.selectFrom("api_keys").select("user_id").where("id", "=", id),
);
const sessionOwnerById = prepared((db, id: number) =>
  db.selectFrom("sessions").select("user_id").where("id", "=", id),
);

/** The token of `Bearer <token>` (scheme case-insensitive), or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
  return m?.[1];
}
