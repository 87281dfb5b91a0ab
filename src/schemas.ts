import { type TUnsafe, Type } from "typebox";

/** A positive integer id (users, orgs, keys…): every one Belfry issues is a safe integer. */
export const PositiveId = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

/** A member's role in an org. */
export const RoleSchema = Type.Union([Type.Literal("owner"), Type.Literal("admin"), Type.Literal("member")]);

/**
 * A string that must be one of `values`, as a JSON Schema `enum` (what the OpenAPI document shows
 * and what code generators turn into a union type). `options` may carry `errorMessage`.
 *
 * @example
 * const Status = StringEnum(["pending", "held"], { description: "A delivery's status." });
 */
export const StringEnum = <T extends string>(
  values: readonly T[],
  options: Record<string, unknown> = {},
): TUnsafe<T> => Type.Unsafe<T>({ type: "string", enum: [...values], ...options });
