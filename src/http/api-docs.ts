import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { VERSION } from "../version.js";
import { TAGS } from "./operation.js";

const DESCRIPTION = `In-app notifications: the feed behind a console's bell, webhooks and live push.

Every error answer (every non-2xx except 304) is the envelope \`{"error": {"type", "message"}}\`;
each status has one \`error.type\`. Unknown routes and methods are 404 before authentication, and
bodies over 1 MiB are 413 before authentication. Times are RFC 3339 UTC with whole seconds.`;

/**
 * The OpenAPI 3.1 document, generated from the routes' own schemas (`GET /openapi.json`), and
 * the API reference page that renders it (`GET /docs`, Swagger UI served from node_modules; it
 * loads nothing from other hosts). Register it before the routes: it collects them as they are
 * added. Its own routes are hidden from the document and need no authentication.
 */
export async function registerApiDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "Belfry", version: VERSION, description: DESCRIPTION },
      servers: [{ url: "/", description: "This server" }],
      tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
      components: {
        securitySchemes: {
          userKey: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "bf_…",
            description:
              "A user's API key, personal or org (`bf_` + 43 characters): Authorization: Bearer bf_…. Either kind acts as its user on /api/v1/me.",
          },
          sessionToken: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "bfs_…",
            description:
              "A short-lived browser session token (`bfs_…`) the platform's backend mints for a user; accepted on the feed, settings and stream routes.",
          },
          adminToken: {
            type: "http",
            scheme: "bearer",
            description: "The platform's admin token (BELFRY_ADMIN_TOKEN), for /admin/v1.",
          },
        },
      },
    },
    // Shared schemas (the error envelopes) become components named by their $id.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === "string" ? json.$id : `def-${i}`,
    },
    transformObject: (document) =>
      withoutKeywords("openapiObject" in document ? document.openapiObject : document.swaggerObject, [
        "errorMessage",
      ]),
  });
  app.get("/openapi.json", { schema: { hide: true } }, () => app.swagger());
  await app.register(swaggerUi, {
    routePrefix: "/docs",
    logo: null as unknown as undefined, // no logo (undefined would mean Fastify's)
    theme: { title: "Belfry API reference" },
    uiConfig: {
      layout: "BaseLayout", // no top bar with a box to load other documents
      deepLinking: true,
      docExpansion: "list",
      defaultModelsExpandDepth: 0,
      displayRequestDuration: true,
    },
  });
}

/**
 * A copy of the document without validation-only keywords: `errorMessage` phrases our 400s and
 * 404s; the document describes the rules themselves.
 */
function withoutKeywords<T>(value: T, keywords: string[]): T {
  if (Array.isArray(value)) return value.map((v) => withoutKeywords(v, keywords)) as T;
  if (value === null || typeof value !== "object") return value;
  const copy: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!keywords.includes(key)) copy[key] = withoutKeywords(v, keywords);
  }
  return copy as T;
}
