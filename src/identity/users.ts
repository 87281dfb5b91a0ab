import { type Static, Type } from "typebox";
import type { Deps } from "../deps.js";
import { conflict, invalidRequest, notFound } from "../errors.js";
import { raiseEvent } from "../events/raise.js";
import { createFeedState } from "../feed/feed-state.js";
import { forUpdate } from "../store/for-update.js";
import type { UserRow } from "../store/schema.js";
import { type Executor, isUniqueViolation } from "../store/store.js";
import { type Tx, transact } from "../store/transaction.js";
import { toIso } from "../time.js";
import { validator } from "../validation.js";
import { memberDirectory } from "./memberships.js";

export const User = Type.Object({
  id: Type.Integer(),
  email: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
});
export type User = Static<typeof User>;

const Email = Type.String({ minLength: 3, maxLength: 254 });
const Name = Type.Union([Type.String({ maxLength: 200 }), Type.Null()], {
  errorMessage: "must be a string of at most 200 characters, or null",
});

export const CreateUserRequest = Type.Object(
  { email: Email, name: Type.Optional(Name) },
  { additionalProperties: false },
);
export const UpdateUserRequest = Type.Object(
  { email: Type.Optional(Email), name: Type.Optional(Name) },
  { additionalProperties: false },
);
const validateCreate = validator(CreateUserRequest);
const validateUpdate = validator(UpdateUserRequest);

export const toUser = (row: UserRow): User => ({
  id: row.id,
  email: row.email,
  name: row.name,
  created_at: toIso(row.created_at),
});

/**
 * Checks the documented address rules beyond length: exactly one `@` with something on each
 * side, no whitespace or control characters. Unicode is allowed.
 */
function checkEmail(email: string): void {
  const [local, domain, ...rest] = email.split("@");
  if (rest.length > 0 || !local || !domain)
    throw invalidRequest("email must contain exactly one @ with text on both sides");
  if (/[\s\p{Cc}]/u.test(email))
    throw invalidRequest("email must not contain whitespace or control characters");
}

/**
 * Emails are unique case-insensitively; this is the folded form the unique index holds:
 * NFC, then upper- then lower-case, which folds `ß`/`SS` and `ı`/`I` alike as full case folding does.
 */
const emailKey = (email: string) => email.normalize("NFC").toUpperCase().toLowerCase();

const duplicateEmail = (email: string) => conflict(`A user with email "${email}" already exists.`);

/** Creates a user (`POST /admin/v1/users`). A duplicate email → 409. */
export async function createUser(deps: Deps, body: unknown): Promise<User> {
  const req = validateCreate.parse(body);
  checkEmail(req.email);
  const now = deps.clock();
  try {
    return await transact(deps.store, async (tx) => {
      const { trx } = tx;
      const row = await trx
        .insertInto("users")
        .values({ email: req.email, email_key: emailKey(req.email), name: req.name ?? null, created_at: now })
        .returningAll()
        .executeTakeFirstOrThrow();
      await createFeedState(trx, row.id);
      return toUser(row);
    });
  } catch (error) {
    throw isUniqueViolation(error) ? duplicateEmail(req.email) : error;
  }
}

/** Changes a user's email or name; raises `admin.user.update` when something changed. */
export async function updateUser(deps: Deps, userId: number, body: unknown): Promise<User> {
  const req = validateUpdate.parse(body);
  if (req.email !== undefined) checkEmail(req.email);
  const now = deps.clock();
  try {
    return await transact(deps.store, async (tx) => {
      const { trx } = tx;
      // Locked on PostgreSQL, so concurrent PATCHes apply one after the other and none is lost.
      const query = trx.selectFrom("users").selectAll().where("id", "=", userId);
      const before = await forUpdate(tx, query).executeTakeFirst();
      if (!before) throw notFound(`No user with id ${userId}.`);
      const after = {
        ...before,
        email: req.email ?? before.email,
        name: req.name === undefined ? before.name : req.name,
      };
      const changed = (["email", "name"] as const).filter((f) => after[f] !== before[f]);
      if (changed.length === 0) return toUser(before);
      await trx
        .updateTable("users")
        .set({ email: after.email, email_key: emailKey(after.email), name: after.name })
        .where("id", "=", userId)
        .execute();
      await raiseEvent(tx, memberDirectory(tx.trx), {
        type: "admin.user.update",
        data: { user_id: userId, email: after.email, name: after.name, changed },
        userId,
        occurredAt: now,
        createdAt: now,
      });
      return toUser(after);
    });
  } catch (error) {
    throw isUniqueViolation(error) ? duplicateEmail(req.email ?? "") : error;
  }
}

/** The user with `userId`, or a 404. */
export async function getUserOrThrow(db: Executor, userId: number): Promise<UserRow> {
  const row = await db.selectFrom("users").selectAll().where("id", "=", userId).executeTakeFirst();
  if (!row) throw notFound(`No user with id ${userId}.`);
  return row;
}

/**
 * The user with `userId`, locked until the transaction ends so per-user changes that must not
 * interleave (minting and ending sessions) take turns; or a 404. `FOR NO KEY UPDATE` on
 * PostgreSQL, so rows that merely reference the user (new notifications) are not held up; on
 * SQLite the transaction already holds the write lock.
 */
export async function lockUserOrThrow(tx: Tx, userId: number): Promise<UserRow> {
  const query = tx.trx.selectFrom("users").selectAll().where("id", "=", userId);
  const row = await forUpdate(tx, query, { strength: "no key update" }).executeTakeFirst();
  if (!row) throw notFound(`No user with id ${userId}.`);
  return row;
}

/** Which of `userIds` are users. */
export async function existingUserIds(db: Executor, userIds: number[]): Promise<Set<number>> {
  const rows = await db.selectFrom("users").select("id").where("id", "in", userIds).execute();
  return new Set(rows.map((u) => u.id));
}
