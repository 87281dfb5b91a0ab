import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { catalog, EVENT_TYPES } from "../catalog/catalog.js";
import { VERSION } from "../version.js";
import { webhookPayloadSchema } from "../webhooks/payload.js";
import { OPTIONAL_BODY, TAGS } from "./operation.js";

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
      // TypeBox schemas are JSON Schema; the OpenAPI typings want their own schema type.
      webhooks: webhookOperations() as never,
      components: {
        // Each event type's data, named after the type: ingest bodies and webhook payloads carry it.
        schemas: Object.fromEntries(
          EVENT_TYPES.map((type) => [
            type,
            {
              ...catalog[type].data,
              description: catalog[type].description,
              examples: [catalog[type].example],
            },
          ]),
        ),
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
      withoutKeywords(
        markOptionalBodies("openapiObject" in document ? document.openapiObject : document.swaggerObject),
        ["errorMessage", OPTIONAL_BODY],
      ),
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

const SIGNATURE_HEADERS = [
  ["webhook-id", "The event's id (evt_…), the same on every attempt: deduplicate on it."],
  ["webhook-timestamp", "Unix seconds when this attempt was signed."],
  [
    "webhook-signature",
    "v1,<base64 HMAC-SHA256 of id.timestamp.body> under the endpoint's secret (several, space-separated, while a rotated-out secret still signs). Check it with verifyWebhook.",
  ],
].map(([name, description]) => ({
  in: "header" as const,
  name: name as string,
  required: true,
  description,
  schema: { type: "string" },
}));

/**
 * What Belfry POSTs to webhook endpoints, one entry per event type (Standard Webhooks: signed,
 * at least once, retried with backoff until a 2xx).
 */
function webhookOperations() {
  return Object.fromEntries(
    EVENT_TYPES.map((type) => [
      type,
      {
        post: {
          summary: type,
          description: `${catalog[type].description} Sent to the endpoints whose event_types include it (or are null).`,
          tags: ["Webhooks"],
          parameters: SIGNATURE_HEADERS,
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: webhookPayloadSchema(type, `#/components/schemas/${type}`) as object,
              },
            },
          },
          responses: {
            "2XX": { description: "Received. Any other answer, or none within the timeout, is retried." },
          },
        },
      },
    ]),
  );
}

/**
 * A copy of the document without validation-only keywords: `errorMessage` phrases our 400s and
 * 404s; the document describes the rules themselves.
 */
/** `requestBody.required: false` where the route's body schema says the body may be left out. */
function markOptionalBodies<T>(document: T): T {
  const paths = (document as { paths?: Record<string, Record<string, unknown>> }).paths ?? {};
  for (const operations of Object.values(paths)) {
    for (const op of Object.values(operations)) {
      const body = (
        op as { requestBody?: { required?: boolean; content?: Record<string, { schema?: object }> } }
      ).requestBody;
      const optional = Object.values(body?.content ?? {}).some(
        (c) => (c.schema as Record<string, unknown> | undefined)?.[OPTIONAL_BODY] === true,
      );
      if (body && optional) body.required = false;
    }
  }
  return document;
}

function withoutKeywords<T>(value: T, keywords: string[]): T {
  if (Array.isArray(value)) return value.map((v) => withoutKeywords(v, keywords)) as T;
  if (value === null || typeof value !== "object") return value;
  const copy: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!keywords.includes(key)) copy[key] = withoutKeywords(v, keywords);
  }
  return copy as T;
}
