import type { FastifyInstance } from "fastify";
import { type TSchema, Type } from "typebox";
import { ERROR_TYPE_OF_STATUS, type ErrorStatus, type ErrorType } from "../errors.js";
import { StringEnum } from "../schemas.js";

/** The envelope's name for each `error.type`: the OpenAPI components, named like the SDK's errors. */
const NAMES: Record<ErrorType, string> = {
  invalid_request_error: "InvalidRequestError",
  authentication_error: "AuthenticationError",
  permission_error: "PermissionError",
  not_found_error: "NotFoundError",
  conflict_error: "ConflictError",
  rate_limit_error: "RateLimitError",
  api_error: "ApiError",
  unavailable_error: "UnavailableError",
};

/** The error envelope `{"error": {"type", "message"}}`, one schema per `error.type`. */
export const ERROR_SCHEMAS: TSchema[] = (Object.entries(NAMES) as [ErrorType, string][]).map(([type, name]) =>
  Type.Object(
    {
      error: Type.Object({
        type: StringEnum([type]),
        message: Type.String({ description: "What went wrong, for a person; the first problem found." }),
      }),
    },
    { $id: name, title: name, description: `The error envelope of ${type}.` },
  ),
);

/** Shares the envelopes with every route (their response schemas refer to them by name). */
export function registerErrorSchemas(app: FastifyInstance): void {
  for (const schema of ERROR_SCHEMAS) app.addSchema(schema);
}

/** A reference to the envelope a status answers with. */
export const errorSchemaRef = (status: ErrorStatus) => ({ $ref: `${NAMES[ERROR_TYPE_OF_STATUS[status]]}#` });
