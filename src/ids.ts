import { type TInteger, Type } from "typebox";
import { notFound } from "./errors.js";

/** An id as text → the number: a positive integer written plainly, else 0 (which names nothing). */
export function parseId(raw: string | undefined): number {
  const id = raw !== undefined && /^[1-9]\d{0,15}$/.test(raw) ? Number(raw) : 0;
  return Number.isSafeInteger(id) ? id : 0;
}

/**
 * A path parameter that must be a well-formed id: anything else cannot name a resource, so it is
 * `notFound` like any id that does not exist.
 */
export function pathId(params: unknown, name: string, notFoundMessage: string): number {
  const id = parseId((params as Record<string, string | undefined>)[name]);
  if (id === 0) throw notFound(notFoundMessage);
  return id;
}

/** A path id the route's params schema has already checked (see {@link PathId}). */
export const checkedId = (params: unknown, name: string): number =>
  parseId((params as Record<string, string | undefined>)[name]);

/**
 * The schema of a path id, what `parseId` accepts. With `notFound`, a malformed id is answered
 * 404 with that message when the route's params are validated, before its body is (an id that
 * cannot name anything is not found, whatever the body says). Without it, the route checks the
 * id itself, where another check must come first.
 */
export function PathId(description: string, notFound?: string): TInteger {
  return Type.Integer({
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
    description: `${description} Written plainly (no sign, no leading zeros); any other text names nothing.`,
    ...(notFound !== undefined && { errorMessage: notFound }),
  });
}
