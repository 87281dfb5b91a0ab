import type { FastifySchemaCompiler } from "fastify";
import type { TSchema } from "typebox";
import { invalidRequest, notFound } from "../errors.js";
import { parseId } from "../ids.js";
import { validator } from "../validation.js";
import { OPTIONAL_BODY } from "./operation.js";

type Check = (value: unknown) => true | { error: Error };

/**
 * How route schemas validate requests. Bodies go through the project's own `validator()`, so
 * a route refuses a body with exactly the message its domain function would give (the CLI calls
 * those functions directly). Path ids whose schema carries a 404 message (`PathId(…, notFound)`)
 * are checked first, so an id that cannot name anything is a 404 whatever the body holds.
 *
 * Query strings, headers and other path parameters get no validator at all — Fastify then does
 * no work for them — because their rules are not JSON Schema's: an empty value is absent, a
 * parameter given twice is a 400, booleans are `true|false|1|0`, and some checks must run in an
 * order a route decides. Their schemas document those rules, and the routes read them with the
 * readers built from the same schemas (`queryParams` in query-params.ts).
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  if (httpPart === "body") return bodyCheck(schema);
  if (httpPart === "params") return paramsCheck(schema) as Check;
  return undefined as unknown as Check;
};

function bodyCheck(schema: TSchema): Check {
  const v = validator(schema);
  const optional = (schema as Record<string, unknown>)[OPTIONAL_BODY] === true;
  return (body) => {
    // An empty body reads as null (see the JSON parser); where the body is optional that is "none".
    if (v.check(body) || (optional && (body === undefined || body === null))) return true;
    const problem = v.problem(body) as string;
    return { error: invalidRequest(problem) };
  };
}

/** Checks the path ids that carry their own 404 message; undefined when none does. */
function paramsCheck(schema: TSchema): Check | undefined {
  const properties = (schema as { properties?: Record<string, { errorMessage?: unknown }> }).properties ?? {};
  const ids = Object.entries(properties).flatMap(([name, property]) =>
    typeof property.errorMessage === "string" ? [[name, property.errorMessage] as const] : [],
  );
  if (ids.length === 0) return undefined;
  return (params) => {
    for (const [name, message] of ids) {
      if (parseId((params as Record<string, string | undefined>)[name]) === 0)
        return { error: notFound(message) };
    }
    return true;
  };
}
