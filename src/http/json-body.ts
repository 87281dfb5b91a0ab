import type { FastifyInstance } from "fastify";
import { invalidRequest } from "../errors.js";

/** Refuses malformed UTF-8 instead of storing U+FFFD in its place. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Deeper JSON than this is refused; nothing Belfry accepts comes close. */
const MAX_DEPTH = 32;

/**
 * Replaces Fastify's body parsers with one for JSON. An empty body reads as "no body" (so
 * `POST …/mark-read` with a JSON content type and nothing else works). Beyond well-formed UTF-8
 * JSON, a body is refused when it
 * nests deeper than 32 levels or holds a string (or key) that could not be stored faithfully:
 * U+0000 (PostgreSQL text cannot hold it) or a lone surrogate (not valid UTF-8). `__proto__` keys
 * are refused as well.
 */
export function registerJsonParser(app: FastifyInstance): void {
  // JSON only: Fastify's text/plain parser would let a non-JSON body through to the routes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, bytes, done) => {
    let text: string;
    try {
      text = utf8.decode(bytes as Buffer);
    } catch {
      return done(invalidRequest("The request body is not valid UTF-8."));
    }
    if (text.trim() === "") return done(null, undefined);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return done(invalidRequest("The request body is not valid JSON."));
    }
    const problem = jsonProblem(value);
    done(problem === undefined ? null : invalidRequest(problem), value);
  });
}

/** What is wrong with a parsed JSON value, if anything (see {@link registerJsonParser}). */
export function jsonProblem(root: unknown): string | undefined {
  const stack: [unknown, number][] = [[root, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [value, depth] = item;
    if (typeof value === "string") {
      const problem = stringProblem(value);
      if (problem) return problem;
    } else if (value !== null && typeof value === "object") {
      if (depth > MAX_DEPTH) return `JSON nested deeper than ${MAX_DEPTH} levels is not accepted.`;
      const entries = Array.isArray(value)
        ? value.map((v) => [undefined, v] as const)
        : Object.entries(value);
      for (const [key, child] of entries) {
        if (key !== undefined) {
          if (key === "__proto__") return 'JSON keys named "__proto__" are not accepted.';
          const problem = stringProblem(key);
          if (problem) return problem;
        }
        stack.push([child, depth + 1]);
      }
    }
  }
  return undefined;
}

function stringProblem(s: string): string | undefined {
  if (s.includes("\u0000")) return "Strings must not contain the NUL character (\\u0000).";
  if (!s.isWellFormed()) return "Strings must be valid Unicode (no lone surrogates).";
  return undefined;
}
