import { type Static, type TInteger, type TObject, type TProperties, type TSchema, Type } from "typebox";
import { invalidRequest } from "./errors.js";
import { StringEnum } from "./schemas.js";

/** A parsed query string: repeated keys arrive as arrays. */
export type Query = Record<string, string | string[] | undefined>;

export const MAX_PAGE_SIZE = 200;
const MAX_INT32 = 2 ** 31 - 1;

/**
 * The rules every query parameter follows, in each one's description: the querystring schemas
 * document them, and `queryParams` below enforces them (Fastify does not validate query strings).
 */
const RULES = "An empty value is the same as leaving it out; giving it more than once is a 400.";

/** A boolean query parameter: exactly `true|false|1|0`. */
export const BooleanParam = (description: string) =>
  Type.Optional(Type.Boolean({ description: `${description} Exactly true, false, 1 or 0. ${RULES}` }));

/** A positive integer query parameter, at most 2^31 − 1 (leading zeros allowed). */
export const IntegerParam = (description: string, defaultValue: number) =>
  Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_INT32,
      default: defaultValue,
      description: `${description} Leading zeros are allowed. ${RULES}`,
    }) as TInteger & { default: number },
  );

/** A query parameter that must be one of `values`. */
export const EnumParam = <T extends string>(values: readonly T[], description: string) =>
  Type.Optional(StringEnum(values, { description: `${description} ${RULES}` }));

/** A free-text query parameter. */
export const StringParam = (description: string) =>
  Type.Optional(Type.String({ description: `${description} ${RULES}` }));

/** `page` (default 1) and `page_size` (default 50; above 200 served as 200), for list routes. */
export const PageQuery = {
  page: IntegerParam("The page to return, from 1.", 1),
  page_size: IntegerParam(
    `Items per page; a value above ${MAX_PAGE_SIZE} is served (and echoed) as ${MAX_PAGE_SIZE}.`,
    50,
  ),
};

type Read<S> = S extends TSchema ? (S extends { default: infer D } ? D : Static<S> | undefined) : never;
/** One reader per parameter of a querystring schema. */
export type QueryReaders<P extends TProperties> = { [K in keyof P]: (query: Query) => Read<P[K]> };

/**
 * Readers for the parameters of a querystring schema, applying the API's query rules: an empty
 * value is absent (→ the schema's `default`), a parameter given twice is a 400, and a value is
 * checked against its schema — booleans `true|false|1|0`, integers within `minimum`..`maximum`,
 * strings within `enum`. One reader per parameter, so a route keeps the order of its checks.
 *
 * @example
 * const read = queryParams(Type.Object(PageQuery));
 * const page = read.page(request.query as Query); // 1 when absent
 */
export function queryParams<P extends TProperties>(schema: TObject<P>): QueryReaders<P> {
  const readers: Record<string, (query: Query) => unknown> = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    readers[name] = reader(name, property as Record<string, unknown>);
  }
  return readers as QueryReaders<P>;
}

function reader(name: string, schema: Record<string, unknown>): (query: Query) => unknown {
  const fallback = schema.default;
  if (schema.type === "boolean") return (query) => booleanParam(query, name) ?? fallback;
  if (schema.type === "integer") {
    const min = schema.minimum as number;
    const max = schema.maximum as number;
    return (query) => integerParam(query, name, min, max) ?? fallback;
  }
  if (Array.isArray(schema.enum)) {
    const values = schema.enum as string[];
    const message = `${name} must be one of: ${values.join(", ")}`;
    return (query) => {
      const value = singleParam(query, name);
      if (value !== undefined && !values.includes(value)) throw invalidRequest(message);
      return value ?? fallback;
    };
  }
  return (query) => singleParam(query, name) ?? fallback;
}

/** One parameter by the API's rules: an empty value is the same as none; twice is an error. */
export function singleParam(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw invalidRequest(`${name} must be given at most once`);
  return value === "" ? undefined : value;
}

function booleanParam(query: Query, name: string): boolean | undefined {
  const value = singleParam(query, name);
  if (value === undefined) return undefined;
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw invalidRequest(`${name} must be true, false, 1 or 0`);
}

function integerParam(query: Query, name: string, min: number, max: number): number | undefined {
  const value = singleParam(query, name);
  if (value === undefined) return undefined;
  // Leading zeros are allowed ("007" is 7); the digits after them must fit in 32 bits.
  const digits = /^\d+$/.test(value) ? value.replace(/^0+(?=\d)/, "") : "";
  const n = digits.length > 0 && digits.length <= 10 ? Number(digits) : Number.NaN;
  if (!(n >= min && n <= max)) throw invalidRequest(`${name} must be an integer from ${min} to ${max}`);
  return n;
}

const readPage = queryParams(Type.Object(PageQuery));

/** `page` (default 1) and `page_size` (default 50; above 200 served as 200). */
export function pageParams(query: Query): { page: number; pageSize: number } {
  return {
    page: readPage.page(query),
    pageSize: Math.min(readPage.page_size(query), MAX_PAGE_SIZE),
  };
}
