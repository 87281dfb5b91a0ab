import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { notFound } from "../../errors.js";
import { notModified } from "../feed-cache.js";
import { operation } from "../operation.js";

/** The bundled `<belfry-bell>` module and its strong ETag (a digest of its bytes). */
export interface BellBundle {
  readonly body: Buffer;
  readonly etag: string;
}

/**
 * Where `npm run build` writes the bell. The same relative path works from `src/http/routes`
 * (tests, tsx) and from `dist/http/routes` (the built server).
 */
export const BELL_PATH = fileURLToPath(new URL("../../../dist/bell.js", import.meta.url));

/** Reads the bundle once, at start; undefined when it was not built. */
export function loadBellBundle(path = BELL_PATH): BellBundle | undefined {
  let body: Buffer;
  try {
    body = readFileSync(path);
  } catch {
    return undefined;
  }
  return { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 32)}"` };
}

const BELL_SCHEMA = operation({
  operationId: "getBellModule",
  summary: "The <belfry-bell> module",
  description:
    'One dependency-free ES module that registers the custom element <belfry-bell> (under 12 KB gzipped). Load it with <script type="module">; it is cacheable for five minutes and revalidated by its ETag.',
  tag: "Bell",
  auth: "none",
  store: false,
  success: {
    status: 200,
    description: "The module.",
    schema: Type.String({ description: "JavaScript (an ES module)." }),
    contentType: "text/javascript",
    headers: {
      ETag: Type.String({ description: "A digest of the module's bytes." }),
      "Cache-Control": Type.String({ description: "public, max-age=300" }),
    },
  },
  notModified: { ETag: Type.String({ description: "The same ETag." }) },
  errors: { 404: "The bell was not built on this server (npm run build writes dist/bell.js)." },
});

/**
 * `GET /bell.js`: the bell as one ES module, cacheable for five minutes and revalidated by ETag
 * (a new release changes the ETag). A server whose bell was not built answers 404 saying so.
 */
export async function bellRoutes(app: FastifyInstance, bundle: BellBundle | undefined): Promise<void> {
  app.get("/bell.js", { schema: BELL_SCHEMA }, async (request, reply) => {
    if (!bundle)
      throw notFound("The bell is not built on this server: run `npm run build`, which writes dist/bell.js.");
    reply.headers({
      etag: bundle.etag,
      "cache-control": "public, max-age=300",
      "content-type": "text/javascript; charset=utf-8",
      "x-content-type-options": "nosniff",
    });
    if (notModified(request, bundle.etag)) return reply.code(304).send();
    return reply.send(bundle.body);
  });
}
