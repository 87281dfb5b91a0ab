import type { FastifyInstance } from "fastify";
import { invalidRequest } from "../errors.js";
import { parseJson } from "../json.js";

/** Refuses malformed UTF-8 instead of storing U+FFFD in its place. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Replaces Fastify's body parsers with one for JSON. An empty body reads as "no body" (so
 * `POST …/mark-read` with a JSON content type and nothing else works). Beyond well-formed UTF-8
 * JSON, a body is refused when `jsonProblem` finds something wrong with it.
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
    try {
      done(null, parseJson(text));
    } catch (error) {
      done(error as Error);
    }
  });
}
