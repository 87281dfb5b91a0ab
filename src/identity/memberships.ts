import type { Directory } from "../catalog/catalog.js";
import type { Role } from "../store/schema.js";
import type { Executor } from "../store/store.js";

/** Who belongs to which org, read for other modules (orgs.ts holds the membership writes). */

/** The user's role in the org, or undefined when they are not a member. */
export async function memberRole(db: Executor, orgId: number, userId: number): Promise<Role | undefined> {
  const where = { org_id: orgId, user_id: userId };
  const row = await db
    .selectFrom("memberships")
    .select("role")
    .where((eb) => eb.and(where))
    .executeTakeFirst();
  return row?.role;
}

/** Ids of the org's owners and admins. */
export async function orgManagerIds(db: Executor, orgId: number): Promise<number[]> {
  const rows = await db
    .selectFrom("memberships")
    .select("user_id")
    .where("org_id", "=", orgId)
    .where("role", "in", ["owner", "admin"])
    .execute();
  return rows.map((r) => r.user_id);
}

/**
 * What the catalog's recipient rules may ask about orgs, answered in `db` — the transaction
 * that raises the event, so a member added in it is already seen.
 *
 * @example
 * await raiseEvent(tx, memberDirectory(tx.trx), { type: "admin.org.member.add", … });
 */
export const memberDirectory = (db: Executor): Directory => ({
  orgManagers: (orgId) => orgManagerIds(db, orgId),
});
