import type { Transaction } from "kysely";
import { type Static, Type } from "typebox";
import type { Deps } from "../deps.js";
import { conflict, notFound } from "../errors.js";
import { raiseEvent } from "../events/raise.js";
import { PositiveId, RoleSchema } from "../schemas.js";
import { forUpdate } from "../store/for-update.js";
import type { Database, OrgRow } from "../store/schema.js";
import { type Tx, transact } from "../store/transaction.js";
import { toIso } from "../time.js";
import { validator } from "../validation.js";
import { memberDirectory, memberRole } from "./memberships.js";
import { getUserOrThrow } from "./users.js";

export const Org = Type.Object({ id: Type.Integer(), name: Type.String(), created_at: Type.String() });
export type Org = Static<typeof Org>;
export const Membership = Type.Object({
  org_id: Type.Integer(),
  user_id: Type.Integer(),
  role: RoleSchema,
});
export type Membership = Static<typeof Membership>;

const UserId = PositiveId;
export const CreateOrgRequest = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), owner_user_id: UserId },
  { additionalProperties: false },
);
export const AddMemberRequest = Type.Object(
  { user_id: UserId, role: Type.Union([Type.Literal("admin"), Type.Literal("member")]) },
  { additionalProperties: false },
);
export const ChangeRoleRequest = Type.Object(
  { role: Membership.properties.role },
  { additionalProperties: false },
);
const validateCreate = validator(CreateOrgRequest);
const validateAdd = validator(AddMemberRequest);
const validateRole = validator(ChangeRoleRequest);

const toOrg = (row: OrgRow): Org => ({ id: row.id, name: row.name, created_at: toIso(row.created_at) });

/** Creates an org with its first owner (`POST /admin/v1/orgs`). */
export async function createOrg(deps: Deps, body: unknown): Promise<Org> {
  const req = validateCreate.parse(body);
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const { trx } = tx;
    await getUserOrThrow(trx, req.owner_user_id);
    const org = await trx
      .insertInto("orgs")
      .values({ name: req.name, created_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx
      .insertInto("memberships")
      .values({ org_id: org.id, user_id: req.owner_user_id, role: "owner", created_at: now })
      .execute();
    return toOrg(org);
  });
}

/** Adds a member (`POST /admin/v1/orgs/:id/members`); raises `admin.org.member.add`. */
export async function addMember(deps: Deps, orgId: number, body: unknown): Promise<Membership> {
  const req = validateAdd.parse(body);
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const { trx } = tx;
    const org = await lockOrgOrThrow(tx, orgId);
    const user = await getUserOrThrow(trx, req.user_id);
    if ((await memberRole(trx, orgId, req.user_id)) !== undefined) {
      throw conflict(`User ${req.user_id} is already a member of org ${orgId}.`);
    }
    await trx
      .insertInto("memberships")
      .values({ org_id: orgId, user_id: req.user_id, role: req.role, created_at: now })
      .execute();
    await raiseEvent(tx, memberDirectory(tx.trx), {
      type: "admin.org.member.add",
      data: { org_id: orgId, org_name: org.name, user_id: user.id, email: user.email, role: req.role },
      userId: user.id,
      orgId,
      occurredAt: now,
      createdAt: now,
    });
    return { org_id: orgId, user_id: req.user_id, role: req.role };
  });
}

/** Changes a member's role; the org's last owner cannot be demoted (409). */
export async function changeMemberRole(
  deps: Deps,
  orgId: number,
  userId: number,
  body: unknown,
): Promise<Membership> {
  const { role } = validateRole.parse(body);
  const now = deps.clock();
  return transact(deps.store, async (tx) => {
    const { trx } = tx;
    const org = await lockOrgOrThrow(tx, orgId);
    const { member, user } = await requireMember(trx, orgId, userId);
    if (member.role === role) return { org_id: orgId, user_id: userId, role };
    if (member.role === "owner") await requireAnotherOwner(trx, orgId, "demoted");
    await trx
      .updateTable("memberships")
      .set({ role })
      .where("org_id", "=", orgId)
      .where("user_id", "=", userId)
      .execute();
    await raiseEvent(tx, memberDirectory(tx.trx), {
      type: "admin.org.member.role_change",
      data: {
        org_id: orgId,
        org_name: org.name,
        user_id: userId,
        email: user.email,
        role,
        previous_role: member.role,
      },
      userId,
      orgId,
      occurredAt: now,
      createdAt: now,
    });
    return { org_id: orgId, user_id: userId, role };
  });
}

/**
 * Removes a member and revokes their org keys of this org; raises `admin.org.member.remove`.
 * The org's last owner cannot be removed (409).
 */
export async function removeMember(deps: Deps, orgId: number, userId: number): Promise<void> {
  const now = deps.clock();
  await transact(deps.store, async (tx) => {
    const { trx } = tx;
    const org = await lockOrgOrThrow(tx, orgId);
    const { member, user } = await requireMember(trx, orgId, userId);
    if (member.role === "owner") await requireAnotherOwner(trx, orgId, "removed");
    await trx.deleteFrom("memberships").where("org_id", "=", orgId).where("user_id", "=", userId).execute();
    const revoked = await trx
      .updateTable("api_keys")
      .set({ revoked_at: now })
      .where("org_id", "=", orgId)
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .returning("id")
      .execute();
    for (const key of revoked) tx.changes.revokedKeys.add(key.id);
    await raiseEvent(tx, memberDirectory(tx.trx), {
      type: "admin.org.member.remove",
      data: {
        org_id: orgId,
        org_name: org.name,
        user_id: userId,
        email: user.email,
        role: member.role,
        revoked_key_ids: revoked.map((r) => r.id).sort((a, b) => a - b),
      },
      userId,
      orgId,
      occurredAt: now,
      createdAt: now,
    });
  });
}

/**
 * Reads the org and, on PostgreSQL, locks its row. Every change to an org's members or keys
 * takes this lock first, so they run one at a time per org: two concurrent demotions cannot leave
 * it without an owner, and a key cannot be created for (or revoked by) a member being removed.
 */
export async function lockOrg(tx: Tx, orgId: number): Promise<OrgRow | undefined> {
  const query = tx.trx.selectFrom("orgs").selectAll().where("id", "=", orgId);
  return forUpdate(tx, query).executeTakeFirst();
}

/** {@link lockOrg}, or a 404. */
export async function lockOrgOrThrow(tx: Tx, orgId: number): Promise<OrgRow> {
  const org = await lockOrg(tx, orgId);
  if (!org) throw notFound(`No org with id ${orgId}.`);
  return org;
}

async function requireMember(trx: Transaction<Database>, orgId: number, userId: number) {
  const role = await memberRole(trx, orgId, userId);
  if (!role) throw notFound(`User ${userId} is not a member of org ${orgId}.`);
  return { member: { role }, user: await getUserOrThrow(trx, userId) };
}

async function requireAnotherOwner(trx: Transaction<Database>, orgId: number, verb: string): Promise<void> {
  const owners = await trx
    .selectFrom("memberships")
    .select("user_id")
    .where("org_id", "=", orgId)
    .where("role", "=", "owner")
    .limit(2)
    .execute();
  if (owners.length < 2) throw conflict(`The last owner of org ${orgId} cannot be ${verb}.`);
}
