import { invalidRequest } from "./errors.js";

/** Deeper JSON than this is refused; nothing Belfry accepts comes close. */
const MAX_DEPTH = 32;

/**
 * What is wrong with a parsed JSON value, if anything: nesting deeper than 32 levels, a string
 * (or key) that could not be stored faithfully — U+0000 (PostgreSQL text cannot hold it) or a
 * lone surrogate (not valid UTF-8) — or a `__proto__` key. Iterative, so no input can overflow
 * the stack.
 */
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

/** Parses JSON text that Belfry will act on, refusing what `jsonProblem` refuses (400). */
export function parseJson(text: string, what = "The request body"): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidRequest(`${what} is not valid JSON.`);
  }
  const problem = jsonProblem(value);
  if (problem !== undefined) throw invalidRequest(problem);
  return value;
}
