import { type Static, Type } from "typebox";
import { type EventType, FEED_TYPES } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { validator } from "../validation.js";

export const FeedSettings = Type.Object({ muted_types: Type.Array(Type.String()) });
export type FeedSettings = Static<typeof FeedSettings>;

export const PutFeedSettingsRequest = Type.Object(
  {
    muted_types: Type.Array(
      // Unsafe: a union built from an array types as `never`; the checked schema is the union.
      Type.Unsafe<EventType>(
        Type.Union(
          FEED_TYPES.map((t) => Type.Literal(t)),
          { errorMessage: `must be one of the feed types: ${FEED_TYPES.join(", ")}` },
        ),
      ),
      { maxItems: 100 },
    ),
  },
  { additionalProperties: false },
);
const validatePut = validator(PutFeedSettingsRequest);

/** The user's feed settings: the types kept out of their feed. */
export async function getFeedSettings(deps: Deps, userId: number): Promise<FeedSettings> {
  const row = await deps.store.db
    .selectFrom("feed_states")
    .select("muted_types")
    .where("user_id", "=", userId)
    .executeTakeFirstOrThrow();
  return { muted_types: JSON.parse(row.muted_types) as string[] };
}

/**
 * Replaces the muted types (duplicates folded, first occurrence kept). Muting applies to rows
 * added from now on; unmuting does not back-fill.
 */
export async function putFeedSettings(deps: Deps, userId: number, body: unknown): Promise<FeedSettings> {
  const muted = [...new Set(validatePut.parse(body).muted_types as string[])];
  await deps.store.db
    .updateTable("feed_states")
    .set({ muted_types: JSON.stringify(muted) })
    .where("user_id", "=", userId)
    .execute();
  return { muted_types: muted };
}
