import { Type } from "typebox";

/** A positive integer id (users, orgs, keys…): every one Belfry issues is a safe integer. */
export const PositiveId = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

/** A member's role in an org. */
export const Role = Type.Union([Type.Literal("owner"), Type.Literal("admin"), Type.Literal("member")]);

/** The error envelope every non-2xx answer carries (except 304). */
export const ErrorEnvelope = Type.Object({
  error: Type.Object({ type: Type.String(), message: Type.String() }),
});
