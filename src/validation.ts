import type { Static, TSchema } from "typebox";
import { Compile } from "typebox/compile";
import { invalidRequest } from "./errors.js";

/**
 * Schema validation with messages a person can act on. Every schema — route bodies, query
 * strings, event data — goes through here, so the HTTP API and the CLI say the same thing.
 * A schema node may carry `errorMessage` to replace the generated text for that node.
 */
export interface Validator<S extends TSchema> {
  check(value: unknown): value is Static<S>;
  /** The first problem with `value`, phrased for `where` ("data", "query"), or undefined. */
  problem(value: unknown, where?: string): string | undefined;
  /** Returns `value` typed, or throws a 400 `ApiError` naming the first problem. */
  parse(value: unknown, where?: string): Static<S>;
}

interface ErrorLike {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

/** One compiled validator per schema: a route and its domain function share it. */
const compiledValidators = new WeakMap<TSchema, Validator<TSchema>>();

export function validator<S extends TSchema>(schema: S): Validator<S> {
  let v = compiledValidators.get(schema) as Validator<S> | undefined;
  if (!v) {
    v = compile(schema);
    compiledValidators.set(schema, v);
  }
  return v;
}

function compile<S extends TSchema>(schema: S): Validator<S> {
  const compiled = Compile(schema);
  const v: Validator<S> = {
    check: (value): value is Static<S> => compiled.Check(value),
    problem(value, where) {
      if (compiled.Check(value)) return undefined;
      return describe(schema, [...compiled.Errors(value)] as ErrorLike[], where);
    },
    parse(value, where) {
      const problem = v.problem(value, where);
      if (problem !== undefined) throw invalidRequest(problem);
      return value as Static<S>;
    },
  };
  return v;
}

function describe(schema: TSchema, errors: ErrorLike[], where?: string): string {
  // Errors inside an anyOf branch are noise: the anyOf's own error follows them.
  const error =
    errors.find((e) => e.keyword === "additionalProperties") ??
    errors.find((e) => !e.schemaPath.includes("/anyOf/") && e.keyword !== "boolean") ??
    errors[0];
  if (!error) return `${where ?? "value"} is not valid`;
  const node = resolve(schema, error.schemaPath);
  const at = (extra?: string) => fieldName(error.instancePath, extra, where);
  switch (error.keyword) {
    case "additionalProperties": {
      const names = error.params.additionalProperties as string[];
      return `${at(names[0])} is not a known field`;
    }
    case "required": {
      const names = error.params.requiredProperties as string[];
      return `${at(names[0])} is required`;
    }
  }
  const custom = node?.errorMessage;
  if (typeof custom === "string") return `${at()} ${custom}`;
  const options = (node?.anyOf as TSchema[] | undefined)?.map((s) => (s as { const?: unknown }).const);
  if (options?.every((o) => o !== undefined)) return `${at()} must be one of: ${options.join(", ")}`;
  if (error.keyword === "type") return `${at()} must be ${article(String(error.params.type))}`;
  return `${at()} ${error.message}`;
}

function fieldName(instancePath: string, extra: string | undefined, where: string | undefined): string {
  const parts = instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (extra !== undefined) parts.push(extra);
  const path = parts.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
  if (path === "") return where === undefined ? "The request body" : where;
  return where === undefined ? path : `${where}.${path}`;
}

const article = (type: string) =>
  ({ object: "a JSON object", array: "an array", integer: "an integer", null: "null" })[type] ?? `a ${type}`;

function resolve(schema: TSchema, pointer: string): Record<string, unknown> | undefined {
  let node: unknown = schema;
  for (const part of pointer.replace(/^#\/?/, "").split("/").filter(Boolean)) {
    node = (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return node as Record<string, unknown> | undefined;
}
