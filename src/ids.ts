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
