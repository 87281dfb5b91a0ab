import { notFound } from "../errors.js";

/**
 * A path id: a positive integer written plainly. Anything else cannot name a resource, so it is a
 * 404 like any id that does not exist.
 */
export function pathId(params: unknown, name: string, what: string): number {
  const raw = (params as Record<string, string | undefined>)[name] ?? "";
  const id = /^[1-9]\d{0,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(id)) throw notFound(`No ${what} with id ${JSON.stringify(raw.slice(0, 40))}.`);
  return id;
}
