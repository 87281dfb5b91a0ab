import type { FastifyRequest } from "fastify";
import { invalidRequest } from "../errors.js";

/**
 * A route `preValidation` hook for endpoints that take no body: nothing, or `{}`, is fine;
 * anything else is refused like an unknown field would be, instead of being silently ignored.
 */
export async function noBody(request: FastifyRequest): Promise<void> {
  const body = request.body;
  const empty =
    body === undefined ||
    (typeof body === "object" && body !== null && !Array.isArray(body) && Object.keys(body).length === 0);
  if (!empty) throw invalidRequest("This endpoint takes no request body (send none, or {}).");
}
