import { type Static, Type } from "typebox";
import { FEED_TYPES, FeedTypeName } from "../catalog/catalog.js";
import type { Deps } from "../deps.js";
import { StringEnum } from "../schemas.js";
import { validator } from "../validation.js";
import { readMutedTypes, writeMutedTypes } from "./feed-state.js";

export const FeedSettings = Type.Object(
  { muted_types: Type.Array(FeedTypeName, { description: "Feed types kept out of the user's feed." }) },
  { examples: [{ muted_types: ["system.balance.notify.dispatched"] }] },
);
export type FeedSettings = Static<typeof FeedSettings>;

export const PutFeedSettingsRequest = Type.Object(
  {
    muted_types: Type.Array(
      StringEnum(FEED_TYPES, { errorMessage: `must be one of the feed types: ${FEED_TYPES.join(", ")}` }),
      { maxItems: 100, description: "Replaces the list; duplicates are folded, keeping the first." },
    ),
  },
  { additionalProperties: false, examples: [{ muted_types: ["system.balance.notify.dispatched"] }] },
);
const validatePut = validator(PutFeedSettingsRequest);

/** The user's feed settings: the types kept out of their feed. */
export async function getFeedSettings(deps: Deps, userId: number): Promise<FeedSettings> {
  const muted = await readMutedTypes(deps.store.db, userId);
  return { muted_types: muted as FeedSettings["muted_types"] };
}

/**
 * Replaces the muted types (duplicates folded, first occurrence kept). Muting applies to rows
 * added from now on; unmuting does not back-fill.
 */
export async function putFeedSettings(deps: Deps, userId: number, body: unknown): Promise<FeedSettings> {
  const muted = [...new Set(validatePut.parse(body).muted_types)];
  await writeMutedTypes(deps.store.db, userId, muted);
  return { muted_types: muted };
}
