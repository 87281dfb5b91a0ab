import { invalidRequest } from "./errors.js";

/** A parsed query string: repeated keys arrive as arrays. */
export type Query = Record<string, string | string[] | undefined>;

const MAX_PAGE_SIZE = 200;
const MAX_INT32 = 2 ** 31 - 1;

/**
 * One parameter by the SPEC's rules (§3): an empty value is the same as none, and a known
 * parameter given twice is an error.
 */
export function singleParam(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw invalidRequest(`${name} must be given at most once`);
  return value === "" ? undefined : value;
}

/** A boolean parameter: exactly `true|false|1|0`. */
export function booleanParam(query: Query, name: string): boolean | undefined {
  const value = singleParam(query, name);
  if (value === undefined) return undefined;
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw invalidRequest(`${name} must be true, false, 1 or 0`);
}

/** A positive integer parameter, at most 2^31 − 1. */
export function integerParam(query: Query, name: string): number | undefined {
  const value = singleParam(query, name);
  if (value === undefined) return undefined;
  // Leading zeros are allowed ("007" is 7); the digits after them must fit in 32 bits.
  const digits = /^\d+$/.test(value) ? value.replace(/^0+(?=\d)/, "") : "";
  const n = digits.length > 0 && digits.length <= 10 ? Number(digits) : Number.NaN;
  if (!(n >= 1 && n <= MAX_INT32)) throw invalidRequest(`${name} must be an integer from 1 to ${MAX_INT32}`);
  return n;
}

/** `page` (default 1) and `page_size` (default 50; above 200 served as 200). */
export function pageParams(query: Query): { page: number; pageSize: number } {
  return {
    page: integerParam(query, "page") ?? 1,
    pageSize: Math.min(integerParam(query, "page_size") ?? 50, MAX_PAGE_SIZE),
  };
}
