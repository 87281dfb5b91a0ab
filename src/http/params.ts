import { notFound } from "../errors.js";

/** A path id as a number: a positive integer written plainly, else 0 (which names nothing). */
export function parseId(params: unknown, name: string): number {
  const raw = (params as Record<string, string | undefined>)[name] ?? "";
  const id = /^[1-9]\d{0,15}$/.test(raw) ? Number(raw) : 0;
  return Number.isSafeInteger(id) ? id : 0;
}

/**
 * A path id that must be well-formed: anything else cannot name a resource, so it is a 404 like
 * any id that does not exist.
 */
export function pathId(params: unknown, name: string, what: string): number {
  const id = parseId(params, name);
  if (id === 0) throw notFound(`No ${what} with that id.`);
  return id;
}
