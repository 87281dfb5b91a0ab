import type { Transaction } from "kysely";
import { type Static, Type } from "typebox";
import type { Deps } from "../deps.js";
import { forbidden, invalidRequest, notFound } from "../errors.js";
import { raiseEvent } from "../events/raise.js";
import { PositiveId } from "../schemas.js";
import type { ApiKeyRow, Database } from "../store/schema.js";
import { type Tx, transact } from "../store/transaction.js";
import { toIso, toIsoOrNull } from "../time.js";
import { validator } from "../validation.js";
import type { Principal } from "./authenticate.js";
import { generateKey } from "./key-secret.js";
import { memberDirectory, memberRole } from "./memberships.js";
import { lockOrg, lockOrgOrThrow } from "./orgs.js";
import { getUserOrThrow } from "./users.js";

export const ApiKey = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  prefix: Type.String(),
  user_id: Type.Integer(),
  org_id: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Type.String(),
  revoked_at: Type.Union([Type.String(), Type.Null()]),
});
export type ApiKey = Static<typeof ApiKey>;
/** A key as created: the only time its secret `key` is shown. */
export const NewApiKey = Type.Object({ ...ApiKey.properties, key: Type.String() });
export type NewApiKey = Static<typeof NewApiKey>;

const KeyName = Type.String({ minLength: 1, maxLength: 200 });
export const CreateKeyRequest = Type.Object({ name: KeyName }, { additionalProperties: false });
export const CreateOrgKeyRequest = Type.Object(
  { user_id: PositiveId, name: KeyName },
  { additionalProperties: false },
);
const validateCreate = validator(CreateKeyRequest);
const validateCreateOrg = validator(CreateOrgKeyRequest);

/** What every key event says about the key. */
const keyFacts = (row: ApiKeyRow) => ({
  key_id: row.id,
  name: row.name,
  prefix: row.prefix,
  user_id: row.user_id,
});

export const toApiKey = (row: ApiKeyRow): ApiKey => ({
  id: row.id,
  name: row.name,
  prefix: row.prefix,
  user_id: row.user_id,
  org_id: row.org_id,
  created_at: toIso(row.created_at),
  revoked_at: toIsoOrNull(row.revoked_at),
});

async function insertKey(
  trx: Transaction<Database>,
  values: { userId: number; orgId: number | null; name: string; now: number },
): Promise<NewApiKey> {
  const { secret, prefix, hash } = generateKey();
  const row = await trx
    .insertInto("api_keys")
    .values({
      user_id: values.userId,
      org_id: values.orgId,
      name: values.name,
      prefix,
      secret_hash: hash,
      created_at: values.now,
      revoked_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { ...toApiKey(row), key: secret };
}

/** Creates a personal key (`POST /admin/v1/users/:id/keys`); raises `admin.api_key.create`. */
export async function createPersonalKey(deps: Deps, userId: number, body: unknown): Promise<NewApiKey> {
  const { name } = validateCreate.parse(body);
  await getUserOrThrow(deps.store.db, userId);
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const { trx } = tx;
    const key = await insertKey(trx, { userId, orgId: null, name, now });
    await raiseEvent(tx, memberDirectory(tx.trx), {
      type: "admin.api_key.create",
      data: { key_id: key.id, name, prefix: key.prefix, user_id: userId, org_id: null },
      userId,
      occurredAt: now,
      createdAt: now,
    });
    return key;
  });
}

/** Creates an org key for a member (`POST /admin/v1/orgs/:id/keys`); raises `org.api_key.create`. */
export async function createOrgKey(deps: Deps, orgId: number, body: unknown): Promise<NewApiKey> {
  const { user_id: userId, name } = validateCreateOrg.parse(body);
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const { trx } = tx;
    const org = await lockOrgOrThrow(tx, orgId);
    if ((await memberRole(trx, orgId, userId)) === undefined)
      throw invalidRequest(`User ${userId} is not a member of org ${orgId}.`);
    const key = await insertKey(trx, { userId, orgId, name, now });
    await raiseEvent(tx, memberDirectory(tx.trx), {
      type: "org.api_key.create",
      data: { key_id: key.id, name, prefix: key.prefix, user_id: userId, org_id: orgId, org_name: org.name },
      userId,
      orgId,
      occurredAt: now,
      createdAt: now,
    });
    return key;
  });
}

/**
 * Revokes a key now if it is not revoked yet. Returns the key as it stands and whether this
 * call revoked it (a repeat returns the original `revoked_at` and raises nothing).
 */
async function revoke(tx: Tx, row: ApiKeyRow, now: number) {
  const { trx } = tx;
  if (row.revoked_at !== null) return { row, revokedNow: false };
  const updated = await trx
    .updateTable("api_keys")
    .set({ revoked_at: now })
    .where("id", "=", row.id)
    .where("revoked_at", "is", null)
    .returningAll()
    .executeTakeFirst();
  if (updated) {
    tx.changes.revokedKeys.add(updated.id);
    return { row: updated, revokedNow: true };
  }
  // Revoked by a concurrent call between our read and our write.
  return {
    row: await trx.selectFrom("api_keys").selectAll().where("id", "=", row.id).executeTakeFirstOrThrow(),
    revokedNow: false,
  };
}

/** A platform admin revokes any key (`POST /admin/v1/keys/:id/revoke`); raises `admin.api_key.revoke` once. */
export async function revokeKeyAsAdmin(deps: Deps, keyId: number): Promise<ApiKey> {
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const { trx } = tx;
    const key = await trx.selectFrom("api_keys").selectAll().where("id", "=", keyId).executeTakeFirst();
    if (!key) throw notFound(`No API key with id ${keyId}.`);
    const { row, revokedNow } = await revoke(tx, key, now);
    if (revokedNow) {
      await raiseEvent(tx, memberDirectory(tx.trx), {
        type: "admin.api_key.revoke",
        data: {
          ...keyFacts(row),
          org_id: row.org_id,
        },
        userId: row.user_id,
        orgId: row.org_id,
        occurredAt: now,
        createdAt: now,
      });
    }
    return toApiKey(row);
  });
}

/**
 * An org owner or admin revokes an org key of that org
 * (`POST /api/v1/orgs/:org_id/keys/:key_id/revoke`); raises `org.api_key.revoke` once.
 * Anyone else, and any caller for an org that does not exist, gets 403; a key that is not an org
 * key of the org gets 404. An org key may act only on its own org.
 */
export async function revokeOrgKeyAsMember(
  deps: Deps,
  caller: Principal,
  orgId: number,
  keyId: number,
): Promise<ApiKey> {
  // The HTTP layer refuses sessions on org routes already; this keeps the rule where it matters.
  if (caller.kind !== "key")
    throw forbidden("A browser session token cannot administer orgs; use an API key.");
  if (caller.orgId !== null && caller.orgId !== orgId) {
    throw forbidden("An org key can act only on its own org.");
  }
  const callerUserId = caller.userId;
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const { trx } = tx;
    // The org lock orders this after any concurrent demotion or removal of the caller.
    const org = await lockOrg(tx, orgId);
    const role = org ? await memberRole(trx, orgId, callerUserId) : undefined;
    if (!org || role === undefined || role === "member") {
      throw forbidden("Only an owner or admin of this org can revoke its keys.");
    }
    const key = await trx
      .selectFrom("api_keys")
      .selectAll()
      .where("id", "=", keyId)
      .where("org_id", "=", orgId)
      .executeTakeFirst();
    if (!key) throw notFound(`No key with id ${keyId} in this org.`);
    const { row, revokedNow } = await revoke(tx, key, now);
    if (revokedNow) {
      await raiseEvent(tx, memberDirectory(tx.trx), {
        type: "org.api_key.revoke",
        data: {
          ...keyFacts(row),
          org_id: orgId,
          org_name: org.name,
          revoked_by_user_id: callerUserId,
        },
        userId: row.user_id,
        orgId,
        actorUserId: callerUserId,
        occurredAt: now,
        createdAt: now,
      });
    }
    return toApiKey(row);
  });
}
