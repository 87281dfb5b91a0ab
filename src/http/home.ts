import type { FastifyInstance } from "fastify";
import { notFound } from "../errors.js";

/**
 * `GET /` points at the API reference: a browser (asking for HTML) is redirected to `/docs`; an
 * API client gets the usual 404 envelope for a path that is no route, with the pointer in its
 * message. Its own registration, so a server with a page of its own at `/` (the demo console)
 * leaves it out.
 */
export async function homeRoute(app: FastifyInstance): Promise<void> {
  app.get("/", { schema: { hide: true } }, async (request, reply) => {
    if (request.headers.accept?.includes("text/html")) return reply.redirect("/docs", 302);
    throw notFound(
      "No route for GET /. The API reference is at /docs, the OpenAPI document at /openapi.json.",
    );
  });
}
