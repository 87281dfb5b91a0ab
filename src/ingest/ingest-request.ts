import { type Static, type TSchema, Type } from "typebox";
import { catalog, type EventType, INGEST_TYPES } from "../catalog/catalog.js";
import { PositiveId, StringEnum } from "../schemas.js";
import { type Validator, validator } from "../validation.js";

/** The ingest endpoints' request and answer schemas (`POST /admin/v1/events`, `…/events/batch`). */

/** A console-relative path: one leading `/` (not `//` or `/\`, which browsers treat as a host). */
const LINK_MESSAGE =
  "must be a path that starts with a single / and has no whitespace (at most 2048 characters)";
export const Link = Type.String({
  maxLength: 2048,
  pattern: "^/(?![/\\\\])[^\\s\\x00-\\x1f\\x7f]*$",
  errorMessage: LINK_MESSAGE,
});

export const IngestRequest = Type.Object(
  {
    id: Type.String({
      pattern: "^[A-Za-z0-9._:-]{1,128}$",
      errorMessage: "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'",
    }),
    type: StringEnum(INGEST_TYPES, {
      errorMessage: `must be one of the ingestible types: ${INGEST_TYPES.join(", ")}`,
    }),
    user_id: PositiveId,
    data: Type.Object(
      {},
      {
        description:
          "The event's data, checked against its type's schema in the catalog (extra fields are kept).",
      },
    ),
    occurred_at: Type.Optional(
      Type.String({
        maxLength: 64,
        description:
          "RFC 3339 with any offset (default now), normalised to UTC, fractions truncated; at most 24 h ahead. Becomes the notification's created_at.",
      }),
    ),
    title: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: "Overrides the rendered title." }),
    ),
    body: Type.Optional(
      Type.String({ minLength: 1, maxLength: 2000, description: "Overrides the rendered body." }),
    ),
    link: Type.Optional(Type.Union([Link, Type.Null()], { errorMessage: `${LINK_MESSAGE}, or null` })),
  },
  {
    additionalProperties: false,
    examples: INGEST_TYPES.map((type, i) => ({
      id: `evt-${1001 + i}`,
      type,
      user_id: 7,
      data: catalog[type].example,
    })),
  },
);
export type IngestRequest = Static<typeof IngestRequest>;

export const IngestResult = Type.Object(
  {
    id: Type.String(),
    duplicate: Type.Boolean({ description: "true: this id was already ingested with the same content." }),
    notifications: Type.Integer({
      description: "Feed rows this call created (0 when muted or a duplicate).",
    }),
  },
  { examples: [{ id: "evt-1001", duplicate: false, notifications: 1 }] },
);
export type IngestResult = Static<typeof IngestResult>;

export const validateRequest = validator(IngestRequest);
export const validateData: Partial<Record<EventType, Validator<TSchema>>> = Object.fromEntries(
  INGEST_TYPES.map((t) => [t, validator(catalog[t].data)]),
);

export const MAX_BATCH = 1000;
export const IngestBatchRequest = Type.Object(
  {
    events: Type.Array(
      Type.Unknown({
        description:
          "An event exactly as POST /admin/v1/events takes it. Each is checked on its own: one that fails is reported in its place in `results`, and the others land.",
      }),
      { minItems: 1, maxItems: MAX_BATCH },
    ),
  },
  {
    additionalProperties: false,
    examples: [
      {
        events: INGEST_TYPES.map((type, i) => ({
          id: `evt-${1001 + i}`,
          type,
          user_id: 7,
          data: catalog[type].example,
        })),
      },
    ],
  },
);
/** What a batch item can fail with: its own validation, an unknown user, a reused id. */
export const ITEM_ERROR_TYPES = ["invalid_request_error", "not_found_error", "conflict_error"] as const;
const BatchItemError = Type.Object({
  id: Type.Union([Type.String(), Type.Null()], {
    description: "The item's id, or null when it had no string id.",
  }),
  error: Type.Object({
    type: StringEnum(ITEM_ERROR_TYPES),
    message: Type.String({ description: "Starts with events[i]:, the item's index." }),
  }),
});
export const IngestBatchResult = Type.Object({
  results: Type.Array(Type.Union([IngestResult, BatchItemError])),
});
export type IngestBatchResult = Static<typeof IngestBatchResult>;
export const validateBatch = validator(IngestBatchRequest);
